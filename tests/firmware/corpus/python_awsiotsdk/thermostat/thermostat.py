"""Thermostat on a Raspberry Pi: telemetry every few seconds, setpoint from the shadow.

Based on the aws-iot-device-sdk-python-v2 pubsub and shadow samples.
"""

import json
import sys
import threading
import time

from awscrt import mqtt
from awsiot import iotshadow, mqtt_connection_builder

ENDPOINT = "a3qj468xyzabcd-ats.iot.us-east-1.amazonaws.com"
THING_NAME = "thermostat-42"
READINGS = 3

state = {"setpoint": 20.5, "mode": "heat"}
changed = threading.Event()


def on_delta(delta):
    # The cloud asked for a new setpoint: apply it and report what we now run with.
    if delta.state:
        state.update(delta.state)
        changed.set()


def main():
    connection = mqtt_connection_builder.mtls_from_path(
        endpoint=ENDPOINT,
        port=8883,
        cert_filepath="certs/thermostat.cert.pem",
        pri_key_filepath="certs/thermostat.private.key",
        ca_filepath="certs/AmazonRootCA1.pem",
        client_id=THING_NAME,
        clean_session=False,
        keep_alive_secs=30,
    )
    connection.connect().result()
    shadow = iotshadow.IotShadowClient(connection)
    subscribed, _ = shadow.subscribe_to_shadow_delta_updated_events(
        request=iotshadow.ShadowDeltaUpdatedSubscriptionRequest(thing_name=THING_NAME),
        qos=mqtt.QoS.AT_LEAST_ONCE,
        callback=on_delta,
    )
    subscribed.result()

    for n in range(READINGS):
        reading = {"thing": THING_NAME, "celsius": 19.0 + n / 10, "setpoint": state["setpoint"]}
        connection.publish(
            topic="dt/thermostats/" + THING_NAME + "/temperature",
            payload=json.dumps(reading),
            qos=mqtt.QoS.AT_LEAST_ONCE,
        )
        time.sleep(0.01)

    shadow.publish_update_shadow(
        iotshadow.UpdateShadowRequest(
            thing_name=THING_NAME,
            state=iotshadow.ShadowState(reported=dict(state, online=True)),
        ),
        mqtt.QoS.AT_LEAST_ONCE,
    ).result()

    if "--listen" in sys.argv and changed.wait(timeout=30):
        shadow.publish_update_shadow(
            iotshadow.UpdateShadowRequest(
                thing_name=THING_NAME, state=iotshadow.ShadowState(reported=dict(state))
            ),
            mqtt.QoS.AT_LEAST_ONCE,
        ).result()

    connection.disconnect().result()


if __name__ == "__main__":
    main()
