"""Patched MicroPython programs run under CPython with PyPI's umqtt against the emulator."""

from __future__ import annotations

import json

import pytest

from tests.firmware.conftest import (
    copy_corpus,
    patch_repo,
    provision,
    reported,
    run_program,
    telemetry,
    wait_for,
)

CASES = [
    # corpus program, entry script, device id, expected telemetry topic, expected reported
    (
        "micropython_umqtt/esp8266_sensor",
        "main.py",
        "sensor-0001",
        "dt/sensors/sensor-0001/temperature",
        {"firmware": "1.4.2", "readings": 3},
    ),
]


@pytest.mark.parametrize(("name", "script", "device_id", "topic", "state"), CASES)
def test_patched_program_sends_telemetry_and_reports_twin(
    hub, rm, tmp_path, name, script, device_id, topic, state
):
    repo = copy_corpus(name, tmp_path)
    outcome = patch_repo(repo, hub.hostname)
    assert script in outcome.changed
    provision(rm, repo, device_id, "certificate.pem.crt", "private.pem.key")

    result = run_program(hub, repo, script, micropython=True)
    assert result.returncode == 0, result.stderr

    events = wait_for(lambda: telemetry(hub, device_id))
    assert len(events) == 3
    first = events[0]
    assert first.properties["awsTopic"] == topic
    assert [first.properties[f"awsTopic{n}"] for n in range(1, 5)] == topic.split("/")
    assert first.content_type == "application/json"
    assert json.loads(first.body)["seq"] == 0
    assert (
        json.loads(first.extra_annotations["iothub-connection-auth-method"])["type"]
        == "x509Certificate"
    )
    assert reported(rm, device_id) == state
