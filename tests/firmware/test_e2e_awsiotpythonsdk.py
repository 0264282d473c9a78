"""Patched AWSIoTPythonSDK v1 programs against the emulator, X.509 thumbprint auth."""

from __future__ import annotations

import json

from tests.firmware.conftest import (
    copy_corpus,
    patch_repo,
    provision,
    reported,
    run_program,
    send_c2d,
    set_desired,
    start_program,
    telemetry,
    wait_for,
)


def test_logger_with_two_client_objects_shares_one_connection(hub, rm, tmp_path):
    repo = copy_corpus("python_awsiotpythonsdk/legacy_logger", tmp_path)
    # Its MQTT and shadow clients had different ids; on IoT Hub they are one device.
    outcome = patch_repo(repo, hub.hostname, "literal:logger-5")
    assert set(outcome.changed) == {"logger.py"}
    provision(rm, repo, "logger-5", "logger-5.cert.pem", "logger-5.private.key")

    result = run_program(hub, repo, "logger.py")
    assert result.returncode == 0, result.stderr
    events = telemetry(hub, "logger-5")
    assert [json.loads(e.body)["n"] for e in events] == [0, 1, 2]
    assert events[0].properties["awsTopic"] == "logs/logger-5/temperature"
    assert reported(rm, "logger-5") == {"online": True}


def test_porch_light_follows_a_shadow_delta(hub, rm, tmp_path):
    repo = copy_corpus("python_awsiotpythonsdk/porch_light", tmp_path)
    outcome = patch_repo(repo, hub.hostname)
    assert set(outcome.changed) == {"light.py"}
    provision(rm, repo, "porch-light-1", "certs/porch.cert.pem", "certs/porch.private.key")
    set_desired(rm, "porch-light-1", {"brightness": 40})

    process = start_program(hub, repo, "light.py")
    try:
        # shadowGet applied the desired brightness before the first report.
        wait_for(lambda: reported(rm, "porch-light-1").get("brightness") == 40, timeout=20)
        set_desired(rm, "porch-light-1", {"on": True})
        _, err = process.communicate(timeout=30)
        assert process.returncode == 0, err
    finally:
        process.kill()
    assert reported(rm, "porch-light-1") == {"on": True, "brightness": 40}


def test_basic_pubsub_with_uuid_client_id_takes_a_command(hub, rm, tmp_path):
    repo = copy_corpus("python_awsiotpythonsdk/basic_pubsub", tmp_path)
    outcome = patch_repo(repo, hub.hostname, "env:DEVICE_ID")
    assert set(outcome.changed) == {"pubsub.py"}
    provision(rm, repo, "field-gw-9", "gateway.cert.pem", "gateway.private.key")

    env = {"DEVICE_ID": "field-gw-9", "AWS_IOT_ENDPOINT": "unused", "LISTEN_SECONDS": "30"}
    process = start_program(hub, repo, "pubsub.py", extra_env=env)
    try:
        wait_for(lambda: len(telemetry(hub, "field-gw-9")) == 2, timeout=20)
        send_c2d(hub, "field-gw-9", json.dumps({"cmd": "reboot"}))
        _, err = process.communicate(timeout=30)
        assert process.returncode == 0, err
    finally:
        process.kill()
    hello, _, ack = telemetry(hub, "field-gw-9")
    assert json.loads(hello.body) == {"message": "Hello", "sequence": 0}
    assert hello.properties["awsTopic"] == "sdk/test/Python"
    assert ack.properties["awsTopic"] == "sdk/test/Python/ack"
    assert json.loads(ack.body) == {"ack": "reboot"}
