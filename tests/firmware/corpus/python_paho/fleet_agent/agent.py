"""Fleet agent for the line PLC gateways: settings from a named shadow, status on request."""

import json
import os
import threading

import paho.mqtt.client as mqtt

from vendor.aws_iot_helpers.topics import shadow_topic

CONFIG = json.load(open(os.path.join(os.path.dirname(__file__), "agent.json")))
THING = CONFIG["thing_name"]
settings_ready = threading.Event()
settings = {}


def on_connect(client, userdata, flags, rc):
    client.subscribe(shadow_topic(THING, "settings", "get/accepted"), 1)
    client.publish(shadow_topic(THING, "settings", "get"), "{}", qos=1)


def on_message(client, userdata, msg):
    if msg.topic.endswith("/get/accepted"):
        settings.update(json.loads(msg.payload)["state"].get("desired", {}))
        settings_ready.set()


def main():
    client = mqtt.Client(client_id=CONFIG["client_id"], protocol=mqtt.MQTTv311)
    client.tls_set(CONFIG["root_ca"], CONFIG["cert"], CONFIG["key"])
    client.on_connect = on_connect
    client.on_message = on_message
    client.connect(CONFIG["endpoint"], port=8883, keepalive=1800)
    client.loop_start()
    ready = settings_ready.wait(timeout=20)
    status = {"line": settings.get("line", "unknown"), "settings_loaded": ready}
    client.publish(shadow_topic(THING, "settings", "update"),
                   json.dumps({"state": {"reported": status}}), qos=1).wait_for_publish()
    client.publish("status/%s" % THING, json.dumps(status), qos=1).wait_for_publish()
    client.loop_stop()
    client.disconnect()


if __name__ == "__main__":
    main()
