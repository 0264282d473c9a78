"""MicroPython `umqtt.simple` / `umqtt.robust` talking to AWS IoT, moved to IoT Hub's MQTT.

The client keeps umqtt: its constructor gets IoT Hub's host, user name, the device id as
client id and a keep-alive within 1177 s; publish, subscribe and the callback go through
the injected mapping block, which turns AWS topics into IoT Hub's at run time.
"""

from __future__ import annotations

from firmware_patches._python.mqtt_recipe import MqttRecipe

RECIPE = MqttRecipe(
    name="micropython_umqtt",
    stack="micropython_umqtt",
    modules=("umqtt.simple", "umqtt.robust", "umqtt"),
    constructor="MQTTClient",
    constructor_signature=(
        "client_id",
        "server",
        "port",
        "user",
        "password",
        "keepalive",
        "ssl",
        "ssl_params",
    ),
    publish_signature=("topic", "msg", "retain", "qos"),
    micropython=True,
)
