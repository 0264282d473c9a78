"""Porch light: the classic AWSIoTPythonSDK shadow sample, trimmed to what the board does."""

import json
import logging
import threading

from AWSIoTPythonSDK.MQTTLib import AWSIoTMQTTShadowClient

logger = logging.getLogger("porch")
light = {"on": False, "brightness": 0}
changed = threading.Event()


def on_delta(payload, response_status, token):
    # {"version": 12, "state": {"on": true}}
    delta = json.loads(payload)["state"]
    light.update(delta)
    logger.info("delta %s -> %s", delta, light)
    handler.shadowUpdate(json.dumps({"state": {"reported": light}}), on_update, 5)
    changed.set()


def on_update(payload, response_status, token):
    logger.info("update %s %s", response_status, token)


def on_get(payload, response_status, token):
    if response_status == "accepted":
        desired = json.loads(payload)["state"].get("desired", {})
        light.update({k: v for k, v in desired.items() if k in light})


shadow = AWSIoTMQTTShadowClient("porch-light-1")
shadow.configureEndpoint("l2m3n4o5p6q7r8-ats.iot.us-west-2.amazonaws.com", 8883)
shadow.configureCredentials("certs/AmazonRootCA1.pem", "certs/porch.private.key", "certs/porch.cert.pem")
shadow.configureConnectDisconnectTimeout(10)
shadow.configureMQTTOperationTimeout(5)
shadow.connect()

handler = shadow.createShadowHandlerWithName("porch-light-1", True)
handler.shadowRegisterDeltaCallback(on_delta)
handler.shadowGet(on_get, 5)
handler.shadowUpdate(json.dumps({"state": {"reported": light}}), on_update, 5)
changed.wait(30)
shadow.disconnect()
