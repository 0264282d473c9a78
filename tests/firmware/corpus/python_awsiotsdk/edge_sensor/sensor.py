"""Vibration sensor on an industrial PC; configuration from the environment (systemd unit)."""

import json
import os
import threading
import uuid

from awscrt import mqtt
from awsiot import iotshadow
from awsiot import mqtt_connection_builder

ENDPOINT = os.environ["AWS_IOT_ENDPOINT"]
THING = os.environ["THING_NAME"]
# Unique per process so a restarted service never collides with its old session.
CLIENT_ID = "vib-" + str(uuid.uuid4())

thresholds = {}
got_config = threading.Event()
commands = []
done = threading.Event()


def on_config(response):
    thresholds.update(response.state.desired or {})
    got_config.set()


def on_command(topic, payload, dup, qos, retain, **kwargs):
    commands.append(json.loads(payload))
    ack = {"ack": commands[-1].get("cmd"), "topic": topic}
    CONNECTION.publish(topic=topic + "/ack", payload=json.dumps(ack), qos=mqtt.QoS.AT_LEAST_ONCE)
    done.set()


def run():
    global CONNECTION
    conn = CONNECTION = mqtt_connection_builder.mtls_from_path(
        endpoint=ENDPOINT,
        cert_filepath=os.environ["CERT_PATH"],
        pri_key_filepath=os.environ["KEY_PATH"],
        ca_filepath=os.environ.get("ROOT_CA_PATH"),
        client_id=CLIENT_ID,
        keep_alive_secs=2400,
    )
    conn.connect().result()
    shadows = iotshadow.IotShadowClient(conn)
    future, _ = shadows.subscribe_to_get_named_shadow_accepted(
        request=iotshadow.GetNamedShadowSubscriptionRequest(thing_name=THING, shadow_name="thresholds"),
        qos=mqtt.QoS.AT_LEAST_ONCE,
        callback=on_config,
    )
    future.result()
    shadows.publish_get_named_shadow(
        iotshadow.GetNamedShadowRequest(thing_name=THING, shadow_name="thresholds"),
        mqtt.QoS.AT_LEAST_ONCE,
    ).result()
    got_config.wait(10)

    sub, _ = conn.subscribe(topic="cmd/vibration/" + THING, qos=mqtt.QoS.AT_LEAST_ONCE, callback=on_command)
    sub.result()
    peak = 0.7
    if peak > thresholds.get("alarm", 1.0):
        pub, _ = conn.publish(
            topic="alarms/vibration/" + THING,
            payload=json.dumps({"peak": peak, "limit": thresholds["alarm"]}),
            qos=mqtt.QoS.AT_LEAST_ONCE,
        )
        pub.result()
    conn.publish(topic="dt/vibration/" + THING, payload=json.dumps({"peak": peak}), qos=mqtt.QoS.AT_MOST_ONCE)
    done.wait(float(os.environ.get("LISTEN_SECONDS", "0")))
    conn.disconnect().result()


if __name__ == "__main__":
    run()
