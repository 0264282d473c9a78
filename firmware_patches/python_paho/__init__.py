"""paho-mqtt talking to AWS IoT, kept on paho and moved to IoT Hub's MQTT.

Kept on paho rather than rewritten to azure-iot-device: the program's loop, callbacks and
threading stay exactly as they were, and the change is a handful of arguments. The client
gets the device id as client id and IoT Hub's user name (`username_pw_set`), `connect`
dials the hub on 8883 with a keep-alive within 1177 s, `tls_set` keeps the device's
certificate and key and trusts the system store (which holds IoT Hub's roots) instead of
AmazonRootCA1, and topics are mapped at run time by the injected block.
"""

from __future__ import annotations

from firmware_patches._python.mqtt_recipe import MqttRecipe

RECIPE = MqttRecipe(
    name="python_paho",
    stack="python_paho",
    modules=("paho.mqtt.client", "paho.mqtt", "paho"),
    constructor="Client",
    constructor_signature=("client_id", "clean_session", "userdata", "protocol", "transport"),
    publish_signature=("topic", "payload", "qos", "retain", "properties"),
)
