"""Every corpus program: its report and its patch as expected, secrets never echoed,
vendored code untouched, patching idempotent, patched Python compiling.

Expected files live in expected/ (reports as `file:line kind verdict` lines, patched
files verbatim); FIRMWARE_UPDATE_EXPECTED=1 rewrites them after a deliberate change,
to be reviewed in the diff like any code.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from bridge.firmware import DeviceIdSource, PatchOptions, patch, scan
from bridge.firmware.report import to_html, to_json, to_markdown
from firmware_patches._js import error_count as js_errors
from firmware_patches._js import parse_script
from tests.firmware.conftest import CORPUS

EXPECTED = Path(__file__).parent / "expected"
HUB = "myhub.azure-devices.net"
UPDATE = os.environ.get("FIRMWARE_UPDATE_EXPECTED") == "1"

# program, --device-id-from, files the patch changes
PROGRAMS = [
    ("micropython_umqtt/esp8266_sensor", "client-id", {"main.py", "config.py"}),
    ("micropython_umqtt/relay_robust", "literal:relay-0042", {"settings.json", "main.py"}),
    ("micropython_umqtt/greenhouse_named_shadow", "client-id", {"boot.py"}),
    ("python_paho/gateway", "client-id", {"deploy.sh", "gateway.py"}),
    ("python_paho/kiosk", "env:KIOSK_ID", {"Makefile", "kiosk.py"}),
    ("python_paho/fleet_agent", "client-id", {"agent.json", "agent.py"}),
    ("python_awsiotsdk/thermostat", "client-id", {"thermostat.py"}),
    ("python_awsiotsdk/edge_sensor", "env:THING_NAME", {"sensor.py", "requirements.txt"}),
    ("python_awsiotsdk/jobs_runner", "client-id", {"runner.py", "requirements.txt"}),
    ("python_awsiotpythonsdk/legacy_logger", "literal:logger-5", {"logger.py"}),
    ("python_awsiotpythonsdk/porch_light", "client-id", {"light.py"}),
    ("python_awsiotpythonsdk/basic_pubsub", "env:DEVICE_ID", {"pubsub.py"}),
    (
        "node_aws_iot_device_sdk/door_sensor",
        "literal:door-7",
        {"config.json", "index.js", "package.json"},
    ),
    ("node_aws_iot_device_sdk/gps_tracker", "env:VAN_NAME", {"tracker.js", "package.json"}),
    ("node_aws_iot_device_sdk/jobs_agent", "client-id", set()),
    (
        "node_aws_iot_device_sdk_v2/cold_room",
        "client-id",
        {"deploy.sh", "index.js", "package.json"},
    ),
    ("node_aws_iot_device_sdk_v2/pool_pump", "client-id", {"pump.mjs", "package.json"}),
    (
        "node_aws_iot_device_sdk_v2/hvac_gateway",
        "env:HVAC_DEVICE_ID",
        {"config.json", "src/gateway.js", "package.json"},
    ),
    (
        "node_aws_iot_device_sdk_v2/fleet_telemetry",
        "client-id",
        {"src/device.ts", "package.json"},
    ),
    ("arduino_mqtt/esp32_weather", "client-id", {"esp32_weather.ino", "secrets.h"}),
    ("arduino_mqtt/esp8266_relay_bearssl", "client-id", {"esp8266_relay_bearssl.ino", "config.h"}),
    ("arduino_mqtt/nano33_iot_meter", "client-id", {"arduino_secrets.h", "nano33_iot_meter.ino"}),
    ("arduino_mqtt/esp32_lwmqtt", "client-id", {"esp32_lwmqtt.ino", "secrets.h"}),
    ("c_esp_mqtt/pump_controller", "client-id", {"main/app_main.c", "sdkconfig"}),
    ("c_esp_mqtt/boiler_v4", "client-id", {"main/boiler.c"}),
    ("c_esp_mqtt/aws_sdk_shadow", "client-id", {"main/aws_iot_config.h", "main/shadow_main.c"}),
    (
        "c_esp_aws_iot/subscribe_publish",
        "client-id",
        {"main/subscribe_publish_sample.c", "main/CMakeLists.txt", "sdkconfig"},
    ),
    (
        "c_esp_aws_iot/thing_shadow",
        "client-id",
        {
            "main/thing_shadow_sample.c",
            "main/CMakeLists.txt",
            "main/Kconfig.projbuild",
            "sdkconfig",
        },
    ),
    (
        "c_esp_aws_iot/smart_plug",
        "literal:plug-22",
        {"main/plug.c", "main/CMakeLists.txt", "main/aws_iot_config.h"},
    ),
    ("c_coremqtt/freertos_meter", "client-id", {"demo_config.h", "mqtt_demo.c"}),
    ("c_zephyr_mqtt/nrf9160_tracker", "client-id", {"src/main.c"}),
    ("c_zephyr_mqtt/cold_chain", "client-id", {"src/main.c", "prj.conf"}),
    ("c_zephyr_mqtt/shadow_client", "client-id", {"src/main.c"}),
    (
        "c_coremqtt/freertos_lts_sensor",
        "client-id",
        {"include/aws_clientcredential.h", "sensor_task.c"},
    ),
    ("c_coremqtt/freertos_keys_vendored", "client-id", {"demo_config.h", "app_main.c"}),
    (
        "c_coremqtt/esp_aws_iot_mutual_auth",
        "client-id",
        {"main/mqtt_demo_mutual_auth.c", "sdkconfig"},
    ),
]
IDS = [name for name, _, _ in PROGRAMS]

# Every secret planted in the corpus; none may appear in any output.
SECRETS = [
    "Corr3ct-H0rse-Battery",
    "t0mat0es-and-basil",
    "r4dish-and-b33t",
    "h4y-b4les-2019",
    "v0lts-and-amps",
    "c4rrots-and-l33ks",
    "MIIEowgreenhouseFAKEkeyFORcorpus",
    "MIIEowIBAAKCAQEAr3lAYbarnKEYfakeFORtheCORPUSonly",
    "w4ter-w0rks",
    "MIIEpAIBAAKCAQEAzGz1TEST0NLYxKEYxNOTxREALxKEYxFORxTHExCORPUSxxxx",
    "MHcCAQEEIBOILERfakeKEYdoNOTuseTHISanywhereXXXXXXXXXXXXXXXXXXoAoGCCqGSM49",
]


def _options(device_id_from: str) -> PatchOptions:
    return PatchOptions(hub=HUB, device_id=DeviceIdSource.parse(device_id_from))


def _report_lines(report) -> str:
    return "".join(f"{p.file}:{p.line} {p.kind} {p.verdict}\n" for p in report.touch_points)


def _check_expected(path: Path, actual: str) -> None:
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual)
    assert path.exists(), f"{path} missing: run with FIRMWARE_UPDATE_EXPECTED=1 and review"
    assert actual == path.read_text()


def _key_body() -> str:
    key = (CORPUS / "python_paho/fleet_agent/keys/old-device.key").read_text()
    return key.splitlines()[1]


@pytest.mark.parametrize(("name", "device_id_from", "files"), PROGRAMS, ids=IDS)
def test_report_and_patch_are_as_expected(name, device_id_from, files, tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(CORPUS / name, repo)
    outcome = patch(repo, _options(device_id_from), apply=True)
    assert set(outcome.changed) == files
    _check_expected(EXPECTED / name / "report.txt", _report_lines(outcome.report))
    for file, text in sorted(outcome.changed.items()):
        _check_expected(EXPECTED / name / "patched" / file, text)
        if file.endswith(".py"):
            compile(text, file, "exec")
        if file.endswith((".js", ".mjs", ".ts")):
            assert js_errors(parse_script(file, text.encode())) == 0
    # Patching the patched program again changes nothing.
    assert patch(repo, _options(device_id_from)).changed == {}


@pytest.mark.parametrize(("name", "device_id_from", "files"), PROGRAMS, ids=IDS)
def test_no_output_echoes_a_secret(name, device_id_from, files, tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(CORPUS / name, repo)
    outcome = patch(repo, _options(device_id_from))
    outputs = [
        outcome.diff,
        to_json(outcome.report),
        to_markdown(outcome.report),
        to_html(outcome.report),
    ]
    for secret in [*SECRETS, _key_body()]:
        assert all(secret not in output for output in outputs)


def test_secrets_are_reported_by_location_and_kind():
    report = scan(CORPUS)
    secrets = {(p.file, p.line) for p in report.touch_points if p.kind == "secret"}
    assert secrets == {
        ("arduino_mqtt/esp32_weather/secrets.h", 7),
        ("arduino_mqtt/esp32_weather/secrets.h", 26),
        ("arduino_mqtt/esp32_lwmqtt/secrets.h", 6),
        ("arduino_mqtt/esp32_lwmqtt/secrets.h", 11),
        ("arduino_mqtt/esp8266_relay_bearssl/config.h", 6),
        ("arduino_mqtt/esp8266_relay_bearssl/config.h", 10),
        ("arduino_mqtt/nano33_iot_meter/arduino_secrets.h", 2),
        ("c_coremqtt/freertos_keys_vendored/aws_clientcredential_keys.h", 6),
        ("c_esp_mqtt/pump_controller/sdkconfig", 4),
        ("micropython_umqtt/esp8266_sensor/config.py", 5),
        ("micropython_umqtt/greenhouse_named_shadow/credentials.py", 2),
        ("python_paho/fleet_agent/keys/old-device.key", 1),
    }


def test_vendored_code_is_reported_and_never_edited(tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(CORPUS / "python_paho/fleet_agent", repo)
    before = (repo / "vendor/aws_iot_helpers/topics.py").read_text()
    outcome = patch(repo, _options("client-id"), apply=True)
    [vendored] = [f for f in outcome.report.files if f.vendored]
    assert vendored.file == "vendor/aws_iot_helpers/topics.py"
    assert {p.verdict for p in vendored.touch_points} == {"needs_human"}
    assert all("vendored" in p.reason for p in vendored.touch_points)
    assert (repo / "vendor/aws_iot_helpers/topics.py").read_text() == before


def test_awsiotsdk_jobs_become_direct_methods_and_node_jobs_need_a_human():
    runner = scan(CORPUS / "python_awsiotsdk/jobs_runner").touch_points
    jobs = [p for p in runner if p.kind == "jobs"]
    assert jobs
    assert {p.verdict for p in jobs} == {"rewritten"}
    agent = scan(CORPUS / "node_aws_iot_device_sdk/jobs_agent").touch_points
    assert {p.verdict for p in agent if p.file == "agent.js"} == {"needs_human"}
    assert any("map job documents to direct methods by hand" in p.reason for p in agent)


def test_two_client_ids_in_one_program_need_a_device_id_source():
    report = scan(CORPUS / "python_awsiotpythonsdk/legacy_logger")
    logger = [p for p in report.touch_points if p.file == "logger.py"]
    assert {p.verdict for p in logger} == {"needs_human"}
    assert any("IoT Hub allows one connection per device" in p.reason for p in logger)


def test_random_client_id_needs_a_device_id_source():
    report = scan(CORPUS / "micropython_umqtt/relay_robust")
    main = [p for p in report.touch_points if p.file == "main.py"]
    assert {p.verdict for p in main} == {"needs_human"}
    assert all("--device-id-from" in p.reason for p in main)


def test_html_report_is_self_contained():
    html = to_html(scan(CORPUS))
    assert "<script" not in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<style>" in html


def test_stacks_detected_in_the_corpus():
    assert scan(CORPUS).stacks == [
        "arduino_mqtt",
        "c_coremqtt",
        "c_esp_aws_iot",
        "c_esp_mqtt",
        "c_zephyr_mqtt",
        "micropython_umqtt",
        "node_aws_iot_device_sdk",
        "node_aws_iot_device_sdk_v2",
        "python_awsiotpythonsdk",
        "python_awsiotsdk",
        "python_paho",
    ]
