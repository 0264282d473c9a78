"""`--auth sas`: patched programs authenticate with a device key provisioned at cutover
(read from the environment or a file, never written into the program), against the
emulator with Microsoft's SDKs; stacks that cannot mint SAS tokens say why."""

from __future__ import annotations

import base64
import json
import os
import signal

from bridge.firmware import DeviceIdSource, KeySource, PatchOptions, patch, scan
from tests.firmware.conftest import (
    CORPUS,
    copy_corpus,
    reported,
    set_desired,
    start_node_program,
    start_program,
    telemetry,
    wait_for,
)


def _sas_device(rm, device_id: str) -> str:
    key = base64.b64encode(os.urandom(32)).decode()
    secondary = base64.b64encode(os.urandom(32)).decode()
    rm.create_device_with_sas(device_id, key, secondary, "enabled")
    return key


def _options(hub, key_from: str, device_id_from: str = "client-id") -> PatchOptions:
    return PatchOptions(
        hub=hub.hostname,
        device_id=DeviceIdSource.parse(device_id_from),
        auth="sas",
        sas_key=KeySource.parse(key_from),
    )


def test_python_thermostat_with_a_device_key_from_a_file(hub, rm, tmp_path):
    repo = copy_corpus("python_awsiotsdk/thermostat", tmp_path)
    # Device ids unique to this module: the emulator's event store outlives each test.
    options = _options(hub, "file:/etc/thermostat/iothub.key", "literal:thermostat-sas")
    outcome = patch(repo, options, apply=True)
    program = outcome.changed["thermostat.py"]
    assert "IoTHubDeviceClient.create_from_symmetric_key(" in program
    assert "symmetric_key=iothub_device_key()" in program
    assert "open('/etc/thermostat/iothub.key', encoding='utf-8').read().strip()" in program
    certificate = [p for p in outcome.report.touch_points if p.kind == "certificate"]
    assert certificate
    assert all(p.reason.startswith("SAS:") for p in certificate)
    key = _sas_device(rm, "thermostat-sas")
    # No certificate is provisioned: only the key can get this device in.
    key_file = tmp_path / "iothub.key"
    key_file.write_text(key + "\n")
    program = program.replace("/etc/thermostat/iothub.key", str(key_file))
    (repo / "thermostat.py").write_text(program)

    process = start_program(hub, repo, "thermostat.py", "--listen")
    try:
        wait_for(lambda: reported(rm, "thermostat-sas").get("online"), timeout=20)
        set_desired(rm, "thermostat-sas", {"setpoint": 23.0})
        wait_for(lambda: reported(rm, "thermostat-sas").get("setpoint") == 23.0, timeout=20)
        _, err = process.communicate(timeout=30)
        assert process.returncode == 0, err
    finally:
        process.kill()
    assert len(telemetry(hub, "thermostat-sas")) == 3


def test_node_v2_cold_room_with_a_device_key_from_the_environment(hub, rm, tmp_path):
    repo = copy_corpus("node_aws_iot_device_sdk_v2/cold_room", tmp_path)
    outcome = patch(repo, _options(hub, "env:COLD_ROOM_KEY"), apply=True)
    assert "SharedAccessKey=${process.env.COLD_ROOM_KEY}" in outcome.changed["index.js"]
    key = _sas_device(rm, "cold-room-sas")

    env = {"COLD_ROOM_KEY": key, "THING_NAME": "cold-room-sas"}
    process = start_node_program(hub, repo, "index.js", env)
    try:
        wait_for(lambda: reported(rm, "cold-room-sas").get("setpoint") == -18, timeout=30)
        set_desired(rm, "cold-room-sas", {"setpoint": -20})
        wait_for(lambda: reported(rm, "cold-room-sas").get("setpoint") == -20, timeout=30)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
        assert process.returncode == 0, err
    finally:
        process.kill()
    assert [json.loads(e.body)["seq"] for e in telemetry(hub, "cold-room-sas")] == [0, 1, 2]


def test_node_v1_tracker_with_a_device_key(hub, rm, tmp_path):
    repo = copy_corpus("node_aws_iot_device_sdk/gps_tracker", tmp_path)
    patch(repo, _options(hub, "env:IOTHUB_DEVICE_KEY", "env:VAN_NAME"), apply=True)
    key = _sas_device(rm, "van-sas")
    env = {"VAN_NAME": "van-sas", "IOTHUB_DEVICE_KEY": key}
    process = start_node_program(hub, repo, "tracker.js", env)
    try:
        wait_for(lambda: len(telemetry(hub, "van-sas")) == 2, timeout=20)
    finally:
        process.kill()
        process.communicate(timeout=10)


def test_a_wrong_key_is_refused_by_the_hub(hub, rm, tmp_path):
    # The test above could pass with any key if the hub did not check: it does.
    repo = copy_corpus("node_aws_iot_device_sdk_v2/cold_room", tmp_path)
    patch(repo, _options(hub, "env:COLD_ROOM_KEY"), apply=True)
    _sas_device(rm, "cold-room-9")
    wrong = base64.b64encode(b"w" * 32).decode()
    env = {"COLD_ROOM_KEY": wrong, "THING_NAME": "cold-room-9"}
    process = start_node_program(hub, repo, "index.js", env)
    try:
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 1, err
    assert telemetry(hub, "cold-room-9") == []
    assert reported(rm, "cold-room-9") == {}


def test_stacks_without_sas_say_why():
    options = PatchOptions(hub="myhub.azure-devices.net", auth="sas")
    report = scan(CORPUS, options)
    by_stack: dict[str, set[str]] = {}
    for point in report.touch_points:
        if point.kind != "secret" and not point.file.startswith(("generic",)):
            by_stack.setdefault(point.stack, set()).add(point.reason)
    for stack in ("arduino_mqtt", "c_coremqtt", "c_esp_mqtt", "c_esp_aws_iot", "c_zephyr_mqtt"):
        assert any("HMAC-SHA256 token generation" in r for r in by_stack[stack]), stack
    for stack in ("micropython_umqtt", "python_paho"):
        assert any("mint a new one (HMAC-SHA256)" in r for r in by_stack[stack]), stack
    sas_capable = [
        p
        for p in report.touch_points
        if p.stack in {"python_awsiotsdk", "python_awsiotpythonsdk", "node_aws_iot_device_sdk_v2"}
        and p.verdict == "rewritten"
    ]
    assert sas_capable


def test_patching_twice_with_sas_equals_patching_once(tmp_path):
    options = PatchOptions(hub="myhub.azure-devices.net", auth="sas")
    for name, device_id_from in [
        ("python_awsiotsdk/thermostat", "client-id"),
        ("python_awsiotpythonsdk/porch_light", "client-id"),
        ("node_aws_iot_device_sdk/door_sensor", "literal:door-7"),
        ("node_aws_iot_device_sdk_v2/pool_pump", "client-id"),
    ]:
        repo = copy_corpus(name, tmp_path)
        chosen = PatchOptions(
            hub=options.hub, device_id=DeviceIdSource.parse(device_id_from), auth="sas"
        )
        assert patch(repo, chosen, apply=True).changed, name
        assert patch(repo, chosen).changed == {}, name
