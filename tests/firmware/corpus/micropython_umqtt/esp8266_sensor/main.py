# ESP8266 temperature sensor: publishes a reading every minute and reports its state to
# the device shadow. Flashed with `ampy put main.py`.
import time

import machine
import network
import ujson
from umqtt.simple import MQTTClient

from config import ENDPOINT, READINGS, THING_NAME, WIFI_PASSWORD, WIFI_SSID

TOPIC = "dt/sensors/" + THING_NAME + "/temperature"
SHADOW_UPDATE = "$aws/things/" + THING_NAME + "/shadow/update"


def read_key(path):
    with open(path, "rb") as f:
        return f.read()


def wifi():
    sta = network.WLAN(network.STA_IF)
    sta.active(True)
    sta.connect(WIFI_SSID, WIFI_PASSWORD)
    while not sta.isconnected():
        time.sleep(0.1)


def main():
    wifi()
    client = MQTTClient(
        THING_NAME,
        ENDPOINT,
        port=8883,
        keepalive=1200,  # AWS allows up to 20 minutes
        ssl=True,
        ssl_params={"key": read_key("private.pem.key"), "cert": read_key("certificate.pem.crt")},
    )
    client.connect()
    sensor = machine.ADC(0)
    for n in range(READINGS):
        celsius = sensor.read() * 0.1
        client.publish(TOPIC, ujson.dumps({"seq": n, "celsius": celsius}))
        time.sleep(0.01)
    client.publish(SHADOW_UPDATE, ujson.dumps({"state": {"reported": {"firmware": "1.4.2", "readings": READINGS}}}))
    client.disconnect()


main()
