# ESP32 relay board: switches a relay from shadow deltas and "cmd/<thing>/..." commands.
# The endpoint and thing name come from settings.json on the board's flash.
import os
import time

import ubinascii
import ujson
from machine import Pin
from umqtt.robust import MQTTClient

with open("settings.json") as f:
    SETTINGS = ujson.load(f)

THING = SETTINGS["thing"]
# A fresh client id on every boot avoids "client id in use" kicks after a brown-out.
CLIENT_ID = "relay-" + ubinascii.hexlify(os.urandom(3)).decode()
DELTA = "$aws/things/%s/shadow/update/delta" % THING
relay = Pin(5, Pin.OUT)
seen = []


def report(client):
    body = {"state": {"reported": {"relay": relay.value(), "commands": len(seen)}}}
    client.publish("$aws/things/%s/shadow/update" % THING, ujson.dumps(body), qos=1)


def on_message(topic, msg):
    if topic == DELTA.encode():
        state = ujson.loads(msg)["state"]
        if "relay" in state:
            relay.value(1 if state["relay"] else 0)
    else:
        seen.append(topic)


def main():
    with open("certs/relay.key", "rb") as f:
        key = f.read()
    with open("certs/relay.crt", "rb") as f:
        cert = f.read()
    client = MQTTClient(CLIENT_ID, SETTINGS["endpoint"], keepalive=3600, ssl=True,
                        ssl_params={"key": key, "cert": cert})
    client.DEBUG = True
    client.set_callback(on_message)
    client.connect(clean_session=False)
    client.subscribe(DELTA, 1)
    client.subscribe("cmd/%s/#" % THING)
    report(client)
    client.publish("dt/relays/%s/boot" % THING, ujson.dumps({"boot": time.time()}))
    deadline = time.time() + SETTINGS.get("listen", 0)
    while time.time() < deadline and relay.value() == 0:
        client.check_msg()
        time.sleep(0.05)
    report(client)
    client.disconnect()


main()
