"""Patched CPython device programs run against the emulator with X.509 thumbprint auth.

Each program is patched from the corpus, given a certificate whose thumbprint is
registered with Microsoft's registry manager, run as a subprocess, and judged only by
what the hub saw: telemetry with the awsTopic properties, and the twin read back with
IoTHubRegistryManager.
"""

from __future__ import annotations

import json

from tests.firmware.conftest import (
    copy_corpus,
    patch_repo,
    provision,
    reported,
    set_desired,
    start_program,
    telemetry,
    wait_for,
)


def finish(process, repo):
    (repo / "stop").write_text("")
    try:
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, err
    return out, err


def test_paho_gateway_sends_telemetry_reports_and_follows_desired(hub, rm, tmp_path):
    repo = copy_corpus("python_paho/gateway", tmp_path)
    outcome = patch_repo(repo, hub.hostname)
    assert set(outcome.changed) == {"gateway.py"}
    provision(rm, repo, "gw-plant-7", "certs/device.pem.crt", "certs/private.pem.key")

    process = start_program(
        hub, repo, "gateway.py", extra_env={"AWS_IOT_ENDPOINT": "unused", "LISTEN_SECONDS": "30"}
    )
    try:
        wait_for(lambda: reported(rm, "gw-plant-7").get("online"), timeout=20)
        set_desired(rm, "gw-plant-7", {"interval": 0.02, "enabled": False})
        # The program's own delta handler acknowledges the delta in its reported state.
        wait_for(lambda: reported(rm, "gw-plant-7").get("enabled") is False, timeout=20)
    finally:
        finish(process, repo)

    events = telemetry(hub, "gw-plant-7")
    assert len(events) == 3
    assert {e.properties["awsTopic"] for e in events} == {"dt/meters/gw-plant-7/energy"}
    assert events[0].properties["awsTopic2"] == "meters"
    assert json.loads(events[0].body)["meter"] == "M-17"
    assert reported(rm, "gw-plant-7") == {
        "online": True,
        "meter": "M-17",
        "interval": 0.02,
        "enabled": False,
    }


def test_awsiotsdk_thermostat_on_azure_iot_device(hub, rm, tmp_path):
    repo = copy_corpus("python_awsiotsdk/thermostat", tmp_path)
    outcome = patch_repo(repo, hub.hostname)
    assert set(outcome.changed) == {"thermostat.py"}
    assert "awsiot" not in outcome.changed["thermostat.py"].split("<<<")[-1]
    device = "thermostat-42"
    provision(rm, repo, device, "certs/thermostat.cert.pem", "certs/thermostat.private.key")

    process = start_program(hub, repo, "thermostat.py", "--listen")
    try:
        wait_for(lambda: reported(rm, device).get("online"), timeout=20)
        set_desired(rm, device, {"setpoint": 22.0})
        wait_for(lambda: reported(rm, device).get("setpoint") == 22.0, timeout=20)
        _, err = process.communicate(timeout=30)
        assert process.returncode == 0, err
    finally:
        process.kill()

    events = telemetry(hub, device)
    assert len(events) == 3
    assert events[0].properties["awsTopic"] == "dt/thermostats/thermostat-42/temperature"
    assert events[0].content_type == "application/json"
    assert json.loads(events[0].body)["setpoint"] == 20.5
    assert reported(rm, device) == {"setpoint": 22.0, "mode": "heat", "online": True}
