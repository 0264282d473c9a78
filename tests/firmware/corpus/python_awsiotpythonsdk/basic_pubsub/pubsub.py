"""basicPubSub from the AWSIoTPythonSDK samples, as deployed on the field gateways."""

import argparse
import json
import os
import threading
import uuid

from AWSIoTPythonSDK.MQTTLib import AWSIoTMQTTClient

parser = argparse.ArgumentParser()
parser.add_argument("-e", "--endpoint", default=os.environ.get("AWS_IOT_ENDPOINT"))
parser.add_argument("-r", "--rootCA", default="root-CA.crt")
parser.add_argument("-c", "--cert", default="gateway.cert.pem")
parser.add_argument("-k", "--key", default="gateway.private.key")
parser.add_argument("-t", "--topic", default="sdk/test/Python")
args = parser.parse_args()

got = threading.Event()


def custom_callback(client, userdata, message):
    print("Received", message.payload, "from", message.topic)
    client.publish(args.topic + "/ack", json.dumps({"ack": json.loads(message.payload)["cmd"]}), 1)
    got.set()


mqtt = AWSIoTMQTTClient("basicPubSub-" + str(uuid.uuid4()))
mqtt.configureEndpoint(args.endpoint, 8883)
mqtt.configureCredentials(args.rootCA, args.key, args.cert)
mqtt.configureAutoReconnectBackoffTime(1, 32, 20)
mqtt.configureOfflinePublishQueueing(-1)
mqtt.configureDrainingFrequency(2)
mqtt.connect()
mqtt.subscribe(args.topic + "/commands", 1, custom_callback)
for loop in range(2):
    mqtt.publish(args.topic, json.dumps({"message": "Hello", "sequence": loop}), 1)
got.wait(float(os.environ.get("LISTEN_SECONDS", "0")))
mqtt.disconnect()
