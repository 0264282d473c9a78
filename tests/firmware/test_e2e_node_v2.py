"""Patched aws-iot-device-sdk-v2 programs run with Microsoft's azure-iot-device and
azure-iot-device-mqtt (npm, pinned by tools/node-sdks/package-lock.json) against the
emulator: X.509 thumbprint auth with the device's own certificate, or SAS."""

from __future__ import annotations

import json
import signal

from tests.firmware.conftest import (
    copy_corpus,
    patch_repo,
    provision,
    reported,
    send_c2d,
    set_desired,
    start_node_program,
    telemetry,
    wait_for,
)


def _finish(process, *, terminate: bool) -> None:
    try:
        if terminate:
            process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
        assert process.returncode == 0, f"{out}\n{err}"
    finally:
        process.kill()


def test_cold_room_sends_readings_and_follows_its_setpoint(hub, rm, tmp_path):
    repo = copy_corpus("node_aws_iot_device_sdk_v2/cold_room", tmp_path)
    outcome = patch_repo(repo, hub.hostname)
    assert set(outcome.changed) == {"index.js", "package.json", "deploy.sh"}
    provision(rm, repo, "cold-room-3", "certs/device.pem.crt", "certs/private.pem.key")

    # AWS_IOT_ENDPOINT is left unset: the patched program no longer reads it.
    process = start_node_program(hub, repo, "index.js")
    try:
        wait_for(lambda: reported(rm, "cold-room-3").get("setpoint") == -18, timeout=30)
        set_desired(rm, "cold-room-3", {"setpoint": -22})
        wait_for(lambda: reported(rm, "cold-room-3").get("setpoint") == -22, timeout=30)
    finally:
        _finish(process, terminate=True)
    assert reported(rm, "cold-room-3") == {"setpoint": -22, "door": "closed"}
    events = telemetry(hub, "cold-room-3")
    assert [json.loads(e.body)["seq"] for e in events] == [0, 1, 2]
    assert {e.properties["awsTopic"] for e in events} == {"dt/coldrooms/cold-room-3/temperature"}
    assert events[0].properties["awsTopic2"] == "coldrooms"
    assert events[0].content_type == "application/json"


def test_pool_pump_esm_takes_a_command_and_reports_its_speed(hub, rm, tmp_path):
    repo = copy_corpus("node_aws_iot_device_sdk_v2/pool_pump", tmp_path)
    outcome = patch_repo(repo, hub.hostname)
    assert set(outcome.changed) == {"pump.mjs", "package.json"}
    provision(rm, repo, "pool-pump-9", "certs/pump.cert.pem", "certs/pump.private.key")

    process = start_node_program(hub, repo, "pump.mjs")
    try:
        # The raw shadow publish ($aws/things/.../shadow/update) lands in the twin.
        wait_for(lambda: reported(rm, "pool-pump-9").get("speed") == 2, timeout=30)
        send_c2d(
            hub,
            "pool-pump-9",
            json.dumps({"speed": 3}),
            {"awsTopic": "cmd/pumps/pool-pump-9/speed"},
        )
    finally:
        _finish(process, terminate=False)  # it disconnects after the command
    assert reported(rm, "pool-pump-9") == {"speed": 3, "running": True}
    flow, ack = telemetry(hub, "pool-pump-9")
    assert flow.properties["awsTopic"] == "dt/pumps/pool-pump-9/flow"
    assert json.loads(flow.body) == {"lpm": 42.5, "speed": 2}
    assert ack.properties["awsTopic"] == "cmd/pumps/pool-pump-9/speed/ack"
    assert json.loads(ack.body) == {"ok": True, "speed": 3}


def test_hvac_gateway_named_shadows_live_under_shadows(hub, rm, tmp_path):
    repo = copy_corpus("node_aws_iot_device_sdk_v2/hvac_gateway", tmp_path)
    # Its client id is random unless configured: the device id comes from the environment.
    outcome = patch_repo(repo, hub.hostname, "env:HVAC_DEVICE_ID")
    assert set(outcome.changed) == {"src/gateway.js", "package.json", "config.json"}
    provision(rm, repo, "hvac-gw-1", "certs/hvac-gw-1.cert.pem", "certs/hvac-gw-1.private.key")

    process = start_node_program(hub, repo, "src/gateway.js", {"HVAC_DEVICE_ID": "hvac-gw-1"})
    try:
        wait_for(
            lambda: reported(rm, "hvac-gw-1").get("shadows", {}).get("office", {}).get("online"),
            timeout=30,
        )
        set_desired(rm, "hvac-gw-1", {"shadows": {"office": {"setpoint": 19}}})
    finally:
        _finish(process, terminate=False)  # it disconnects after one change
    shadows = reported(rm, "hvac-gw-1")["shadows"]
    assert shadows == {
        "lobby": {"setpoint": 21, "online": True},
        "office": {"setpoint": 19, "online": True},
    }
    climate = telemetry(hub, "hvac-gw-1")
    assert [e.properties["awsTopic"] for e in climate] == [
        "hvac/hvac-gw-1/lobby/climate",
        "hvac/hvac-gw-1/office/climate",
    ]


RAW_SHADOW = """// Raw shadow topics on an aws-crt connection, as many v2 programs do it.
const { mqtt, iot } = require('aws-iot-device-sdk-v2');

const thing = 'raw-shadow-1';
const connection = new mqtt.MqttClient().new_connection(
  iot.AwsIotMqttConnectionConfigBuilder.new_mtls_builder_from_path('c.pem', 'k.pem')
    .with_endpoint('a1b2c3-ats.iot.us-east-1.amazonaws.com').with_client_id(thing).build());

async function main() {
  await connection.connect();
  await connection.subscribe(`$aws/things/${thing}/shadow/get/accepted`, mqtt.QoS.AtLeastOnce,
    async (topic, payload) => {
      const shadow = JSON.parse(Buffer.from(payload).toString());
      const level = shadow.state.desired.level;
      await connection.publish(`$aws/things/${thing}/shadow/update`,
        JSON.stringify({ state: { reported: { level, seen: topic } } }), mqtt.QoS.AtLeastOnce);
      let refused = false;
      await connection.publish(`$aws/things/${thing}/jobs/get`, '{}', mqtt.QoS.AtLeastOnce)
        .catch(() => { refused = true; });
      await connection.publish(`dt/${thing}/refused`, JSON.stringify({ refused }), 1);
      await connection.disconnect();
    });
  await connection.publish(`$aws/things/${thing}/shadow/get`, '{}', mqtt.QoS.AtLeastOnce);
}
main();
"""


def test_raw_shadow_get_and_update_topics_answer_from_the_twin(hub, rm, tmp_path):
    repo = tmp_path / "raw"
    repo.mkdir()
    (repo / "raw.js").write_text(RAW_SHADOW)
    patch_repo(repo, hub.hostname)
    provision(rm, repo, "raw-shadow-1", "c.pem", "k.pem")
    set_desired(rm, "raw-shadow-1", {"level": 7})
    process = start_node_program(hub, repo, "raw.js")
    _finish(process, terminate=False)
    assert reported(rm, "raw-shadow-1") == {
        "level": 7,
        "seen": "$aws/things/raw-shadow-1/shadow/get/accepted",
    }
    [event] = telemetry(hub, "raw-shadow-1")
    assert json.loads(event.body) == {"refused": True}
