# Greenhouse controller: vents and fans, with their settings in a named shadow "climate".
import time

import machine
import network
import ujson
from umqtt.simple import MQTTClient

import credentials

AWS_IOT_ENDPOINT = "b9z8y7x6w5v4u3-ats.iot.ap-southeast-2.amazonaws.com"
CLIENT_ID = "greenhouse-3"
CLIMATE = "$aws/things/" + CLIENT_ID + "/shadow/name/climate/update"


def connect_wifi():
    wlan = network.WLAN(network.STA_IF)
    wlan.active(True)
    wlan.connect(credentials.WIFI_SSID, credentials.WIFI_PASS)
    while not wlan.isconnected():
        time.sleep(0.1)


def run():
    connect_wifi()
    with open("cert/greenhouse.key") as f:
        key = f.read()
    with open("cert/greenhouse.crt") as f:
        cert = f.read()
    mqtt = MQTTClient(client_id=CLIENT_ID, server=AWS_IOT_ENDPOINT, port=8883, keepalive=4000,
                      ssl=True, ssl_params={"key": key, "cert": cert})
    mqtt.connect()
    for sample in range(2):
        mqtt.publish(b"greenhouse/" + CLIENT_ID.encode() + b"/climate",
                     ujson.dumps({"humidity": 61 + sample, "vent": "half"}))
    mqtt.publish(CLIMATE, ujson.dumps({"state": {"reported": {"vent": "half", "fan": 2}}}))
    mqtt.disconnect()


run()
