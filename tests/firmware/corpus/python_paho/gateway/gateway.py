#!/usr/bin/env python3
"""Modbus gateway: forwards meter readings to AWS IoT and obeys commands and shadow deltas."""

import json
import logging
import os
import ssl
import time

import paho.mqtt.client as mqtt

ENDPOINT = os.environ["AWS_IOT_ENDPOINT"]  # filled by deploy.sh from describe-endpoint
THING = os.environ.get("THING_NAME", "gw-plant-7")
CERTS = os.path.join(os.path.dirname(__file__), "certs")

log = logging.getLogger("gateway")
settings = {"interval": 0.05, "enabled": True}
commands = []


def on_connect(client, userdata, flags, rc):
    log.info("connected rc=%s", rc)
    client.subscribe("$aws/things/%s/shadow/update/delta" % THING, qos=1)
    client.subscribe("cmd/%s/#" % THING, qos=1)


def on_message(client, userdata, msg):
    if msg.topic.endswith("/shadow/update/delta"):
        delta = json.loads(msg.payload)["state"]
        settings.update(delta)
        # Acknowledge the new settings in the shadow, as the AWS docs recommend.
        client.publish("$aws/things/%s/shadow/update" % THING,
                       json.dumps({"state": {"reported": delta}}), qos=1)
    else:
        commands.append((msg.topic, msg.payload.decode()))


def read_meter(n):
    return {"meter": "M-17", "kwh": 1200.5 + n, "ts": int(time.time())}


def main():
    client = mqtt.Client(client_id=THING, clean_session=True)
    client.tls_set(
        ca_certs=os.path.join(CERTS, "AmazonRootCA1.pem"),
        certfile=os.path.join(CERTS, "device.pem.crt"),
        keyfile=os.path.join(CERTS, "private.pem.key"),
        tls_version=ssl.PROTOCOL_TLSv1_2,
    )
    client.on_connect = on_connect
    client.on_message = on_message
    client.connect(ENDPOINT, 8883, keepalive=60)
    client.loop_start()
    for n in range(int(os.environ.get("READINGS", "3"))):
        info = client.publish("dt/meters/%s/energy" % THING, json.dumps(read_meter(n)), qos=1)
        info.wait_for_publish()
        time.sleep(settings["interval"])
    client.publish("$aws/things/%s/shadow/update" % THING,
                   json.dumps({"state": {"reported": {"online": True, "meter": "M-17"}}}), qos=1).wait_for_publish()
    deadline = time.time() + float(os.environ.get("LISTEN_SECONDS", "0"))
    while time.time() < deadline and not os.path.exists("stop"):
        time.sleep(0.05)
    client.loop_stop()
    client.disconnect()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main()
