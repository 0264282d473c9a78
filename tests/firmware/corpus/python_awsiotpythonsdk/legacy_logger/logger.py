"""Data logger on AWSIoTPythonSDK v1 (2018): temperature to a topic, state to the shadow."""

import json
import time

from AWSIoTPythonSDK.MQTTLib import AWSIoTMQTTClient, AWSIoTMQTTShadowClient

HOST = "j0k1l2m3n4o5p6-ats.iot.eu-west-1.amazonaws.com"

client = AWSIoTMQTTClient("logger-5")
client.configureEndpoint(HOST, 8883)
client.configureCredentials("root-CA.crt", "logger-5.private.key", "logger-5.cert.pem")
client.configureOfflinePublishQueueing(-1)
client.connect(keepAliveIntervalSecond=600)

shadow_client = AWSIoTMQTTShadowClient("logger-5-shadow")
shadow_client.configureEndpoint(HOST, 8883)
shadow_client.configureCredentials("root-CA.crt", "logger-5.private.key", "logger-5.cert.pem")
shadow_client.connect()
handler = shadow_client.createShadowHandlerWithName("logger-5", True)

for n in range(3):
    client.publish("logs/logger-5/temperature", json.dumps({"n": n, "celsius": 18.5}), 1)
    time.sleep(0.05)
handler.shadowUpdate(json.dumps({"state": {"reported": {"online": True}}}), None, 5)
shadow_client.disconnect()
client.disconnect()
