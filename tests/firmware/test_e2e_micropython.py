"""Patched MicroPython programs run under CPython with PyPI's umqtt against the emulator.

umqtt.simple 1.3.4 and umqtt.robust 1.0 run unmodified (micropython_lib/); shims/ stands
in for the board (machine, network, usocket, ussl). Each program authenticates with its
own certificate by thumbprint, and is judged by what the hub saw.
"""

from __future__ import annotations

import json

from tests.firmware.conftest import (
    copy_corpus,
    patch_repo,
    provision,
    reported,
    run_program,
    set_desired,
    start_program,
    telemetry,
    wait_for,
)


def test_esp8266_sensor_sends_readings_and_reports(hub, rm, tmp_path):
    repo = copy_corpus("micropython_umqtt/esp8266_sensor", tmp_path)
    outcome = patch_repo(repo, hub.hostname)
    assert set(outcome.changed) == {"main.py", "config.py"}
    provision(rm, repo, "sensor-0001", "certificate.pem.crt", "private.pem.key")

    result = run_program(hub, repo, "main.py", micropython=True)
    assert result.returncode == 0, result.stderr

    events = wait_for(lambda: telemetry(hub, "sensor-0001"))
    assert len(events) == 3
    topic = "dt/sensors/sensor-0001/temperature"
    assert events[0].properties["awsTopic"] == topic
    assert [events[0].properties[f"awsTopic{n}"] for n in range(1, 5)] == topic.split("/")
    assert events[0].content_type == "application/json"
    assert [json.loads(e.body)["seq"] for e in events] == [0, 1, 2]
    auth = json.loads(events[0].extra_annotations["iothub-connection-auth-method"])
    assert auth["type"] == "x509Certificate"
    assert reported(rm, "sensor-0001") == {"firmware": "1.4.2", "readings": 3}


def test_robust_relay_with_random_client_id_follows_a_desired_change(hub, rm, tmp_path):
    repo = copy_corpus("micropython_umqtt/relay_robust", tmp_path)
    # The client id is random per boot, so the device id is given explicitly.
    outcome = patch_repo(repo, hub.hostname, "literal:relay-0042")
    assert set(outcome.changed) == {"main.py", "settings.json"}
    assert "iothub_device('relay-0042')" in outcome.changed["main.py"]
    provision(rm, repo, "relay-0042", "certs/relay.crt", "certs/relay.key")

    process = start_program(hub, repo, "main.py", micropython=True)
    try:
        wait_for(lambda: "relay" in reported(rm, "relay-0042"), timeout=20)
        set_desired(rm, "relay-0042", {"relay": True})
        _, err = process.communicate(timeout=30)
        assert process.returncode == 0, err
    finally:
        process.kill()
    assert reported(rm, "relay-0042") == {"relay": 1, "commands": 0}
    [boot] = telemetry(hub, "relay-0042")
    assert boot.properties["awsTopic"] == "dt/relays/relay-0042/boot"


def test_greenhouse_named_shadow_lands_under_shadows(hub, rm, tmp_path):
    repo = copy_corpus("micropython_umqtt/greenhouse_named_shadow", tmp_path)
    outcome = patch_repo(repo, hub.hostname)
    assert set(outcome.changed) == {"boot.py"}  # vendor/ is never edited
    provision(rm, repo, "greenhouse-3", "cert/greenhouse.crt", "cert/greenhouse.key")

    result = run_program(hub, repo, "boot.py", micropython=True)
    assert result.returncode == 0, result.stderr

    events = telemetry(hub, "greenhouse-3")
    assert [e.properties["awsTopic"] for e in events] == ["greenhouse/greenhouse-3/climate"] * 2
    assert reported(rm, "greenhouse-3") == {"shadows": {"climate": {"vent": "half", "fan": 2}}}
