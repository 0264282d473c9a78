"""Patched Node programs run with Microsoft's azure-iot-device + azure-iot-device-mqtt
(npm, pinned by tools/node-sdks/package-lock.json) against the emulator, X.509 auth."""

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


def test_door_sensor_reports_and_acknowledges_a_delta(hub, rm, tmp_path):
    repo = copy_corpus("node_aws_iot_device_sdk/door_sensor", tmp_path)
    # Its device and shadow objects had different client ids; on IoT Hub they are one.
    outcome = patch_repo(repo, hub.hostname, "literal:door-7")
    assert set(outcome.changed) == {"index.js", "package.json", "config.json"}
    assert json.loads(outcome.changed["package.json"])["dependencies"]["azure-iot-device"]
    provision(rm, repo, "door-7", "certs/door-7.cert.pem", "certs/door-7.private.key")

    process = start_node_program(hub, repo, "index.js")
    try:
        wait_for(lambda: reported(rm, "door-7").get("open") is False, timeout=20)
        set_desired(rm, "door-7", {"alarmArmed": True})
        wait_for(lambda: reported(rm, "door-7").get("alarmArmed") is True, timeout=20)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=20)
        assert process.returncode == 0, err
    finally:
        process.kill()
    [event] = telemetry(hub, "door-7")
    assert event.properties["awsTopic"] == "dt/doors/door-7/event"
    assert event.content_type == "application/json"
    assert json.loads(event.body)["open"] is False


def test_gps_tracker_with_random_client_id_sends_positions_and_acks(hub, rm, tmp_path):
    repo = copy_corpus("node_aws_iot_device_sdk/gps_tracker", tmp_path)
    outcome = patch_repo(repo, hub.hostname, "env:VAN_NAME")
    assert set(outcome.changed) == {"tracker.js", "package.json"}
    provision(rm, repo, "van-12", "certs/tracker.crt", "certs/tracker.key")

    process = start_node_program(hub, repo, "tracker.js", {"VAN_NAME": "van-12"})
    try:
        wait_for(lambda: len(telemetry(hub, "van-12")) == 2, timeout=20)
        send_c2d(hub, "van-12", json.dumps({"cmd": "return-to-depot"}))
        _, err = process.communicate(timeout=20)
        assert process.returncode == 0, err
    finally:
        process.kill()
    first, second, ack = telemetry(hub, "van-12")
    assert first.properties["awsTopic"] == "vans/van-12/position"
    assert [json.loads(e.body)["seq"] for e in (first, second)] == [0, 1]
    assert ack.properties["awsTopic"] == "cmd/vans/van-12/ack"
    assert json.loads(ack.body) == {"ack": "return-to-depot"}
