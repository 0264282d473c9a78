"""Self-service kiosk: reports sales to AWS IoT and takes price updates as commands."""

import json
import os
import socket
import time
from pathlib import Path

from paho.mqtt import client as mqtt_client

HERE = Path(__file__).parent
BROKER = (HERE / "endpoint.txt").read_text().strip()
PORT = 8883
DEVICE = socket.gethostname()  # kiosks are named after their host

prices = {"coffee": 2.5}


def on_message(client, userdata, message):
    # cmd/kiosks/<name>/price {"item": "coffee", "price": 2.8}
    update = json.loads(message.payload)
    prices[update["item"]] = update["price"]


def connect():
    client = mqtt_client.Client(DEVICE)
    client.tls_set(ca_certs="AmazonRootCA1.pem", certfile="kiosk.crt", keyfile="kiosk.key")
    client.on_message = on_message
    client.connect(BROKER, PORT)
    client.subscribe(f"cmd/kiosks/{DEVICE}/price")
    return client


def main():
    client = connect()
    client.loop_start()
    for sale in range(int(os.environ.get("SALES", "2"))):
        payload = json.dumps({"sale": sale, "item": "coffee", "price": prices["coffee"]})
        client.publish(f"sales/kiosks/{DEVICE}", payload, 1).wait_for_publish()
    time.sleep(0.1)
    client.loop_stop()
    client.disconnect()


if __name__ == "__main__":
    main()
