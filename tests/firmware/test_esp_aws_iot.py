"""ESP-IDF programs on esp-aws-iot (AWS IoT Device SDK for Embedded C v3): patched to
esp-mqtt with tree-sitter-c, compiled with gcc against stub esp-mqtt and FreeRTOS headers
that print what the program sends and feed it scripted IoT Hub messages, and run."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote

import pytest

from bridge.firmware import DeviceIdSource, PatchOptions, patch
from bridge.mapping.topics import topic_properties
from firmware_patches._c import error_count, parse_c
from tests.firmware.conftest import CORPUS

STUBS = Path(__file__).parent / "stubs" / "esp-idf"
HUB = "myhub.azure-devices.net"
GCC = shutil.which("gcc")
pytestmark = pytest.mark.skipif(GCC is None, reason="gcc is not installed")


def build(tmp_path, name, source, device_id_from="client-id", *defines):
    repo = tmp_path / name
    shutil.copytree(CORPUS / "c_esp_aws_iot" / name, repo)
    before = (repo / source).read_bytes()
    options = PatchOptions(hub=HUB, device_id=DeviceIdSource.parse(device_id_from))
    outcome = patch(repo, options, apply=True)
    assert source in outcome.changed
    assert error_count(parse_c((repo / source).read_bytes())) <= error_count(parse_c(before))
    assert "aws_iot_mqtt_client_interface.h" not in (repo / source).read_text()
    sdkconfig = repo / "sdkconfig"
    lines = sdkconfig.read_text().splitlines() if sdkconfig.exists() else []
    header = tmp_path / "sdkconfig.h"
    header.write_text(
        "".join(f"#define {k} {v}\n" for k, v in (line.split("=", 1) for line in lines))
    )
    blobs = tmp_path / "blobs.c"
    names = re.findall(r'asm\("(\w+)"\)', (repo / source).read_text())
    blobs.write_text(
        "".join(f'const char blob{i}[] __asm__("{n}") = "pem";\n' for i, n in enumerate(names))
    )
    main = tmp_path / "main.c"
    main.write_text("void app_main(void);\nint main(void) { app_main(); return 0; }\n")
    binary = tmp_path / "program"
    flags = ["-std=gnu11", "-Wall", "-Werror", "-Wno-unused-variable", *defines]
    includes = ["-I", str(STUBS), "-include", str(header)]
    sources = [str(repo / source), str(blobs), str(main)]
    subprocess.run([GCC, *flags, *includes, "-o", str(binary), *sources], check=True)
    return repo, binary


def run(binary, inbound, ticks):
    env = {"STUB_INBOUND": ";;".join(inbound), "STUB_TICKS": str(ticks)}
    result = subprocess.run(
        [str(binary)], capture_output=True, text=True, check=True, env=env, timeout=30
    )
    return result.stdout.splitlines()


def events(lines, device):
    """(awsTopic properties, payload) of every telemetry publish."""
    found = []
    for line in lines:
        verb, _, rest = line.partition(" ")
        topic, _, payload = rest.partition(" ")
        if verb == "publish" and topic.startswith(f"devices/{device}/messages/events/"):
            bag = topic.partition("/messages/events/")[2]
            properties = {k: unquote(v) for k, v in (p.split("=") for p in bag.split("&"))}
            found.append((properties, json.loads(payload.rsplit(" ", 1)[0])))
    return found


def reported_patches(lines):
    return [
        json.loads(line.split(" ", 2)[2].rsplit(" ", 1)[0])
        for line in lines
        if line.startswith("publish $iothub/twin/PATCH/properties/reported/?$rid=")
    ]


def test_subscribe_publish_sample_sends_telemetry_and_takes_commands(tmp_path):
    repo, binary = build(tmp_path, "subscribe_publish", "main/subscribe_publish_sample.c")
    assert "REQUIRES mqtt nvs_flash" in (repo / "main/CMakeLists.txt").read_text()
    assert f'CONFIG_AWS_IOT_MQTT_HOST="{HUB}"' in (repo / "sdkconfig").read_text()
    command = (
        "devices/probe-17/messages/devicebound/%24.to=%2Fdevices%2Fprobe-17%2Fmessages"
        "%2Fdevicebound&awsTopic=cmd%2Fprobes%2Fprobe-17%2Finterval"
    )
    lines = run(binary, [f'{command}|{{"interval_ms":250}}'], ticks=6)
    user = f"{HUB}/probe-17/?api-version=2021-04-12"
    assert lines[0] == "I moisture: Connecting to AWS..."  # the program's own log, unchanged
    assert (
        lines[1] == f"init uri=mqtts://{HUB}:8883 client_id=probe-17 username={user} keepalive=10"
    )
    assert lines[2] == "trust digicert_g2=1 microsoft_rsa_2017=1 certificate=pem"
    assert "subscribe devices/probe-17/messages/devicebound/# 1" in lines
    assert "I moisture: command on cmd/probes/probe-17/interval: interval 250" in lines
    sent = events(lines, "probe-17")
    assert len(sent) >= 2
    assert all(props == topic_properties("dt/probes/probe-17/moisture") for props, _ in sent)
    assert [body["seq"] for _, body in sent] == list(range(len(sent)))
    assert {body["interval_ms"] for _, body in sent} == {250}


def test_thing_shadow_sample_reports_to_the_twin_and_follows_desired(tmp_path):
    repo, binary = build(tmp_path, "thing_shadow", "main/thing_shadow_sample.c")
    kconfig = (repo / "main/Kconfig.projbuild").read_text()
    assert f'default "{HUB}"' in kconfig
    inbound = [
        "nothing yet",
        "$iothub/twin/res/204/?$rid=1&$version=2|",
        '$iothub/twin/PATCH/properties/desired/?$version=3|{"ventOpen":true,"$version":3}',
        "$iothub/twin/res/204/?$rid=2&$version=4|",
    ]
    lines = run(binary, inbound, ticks=6)
    user = f"{HUB}/vent-04/?api-version=2021-04-12"
    assert lines[:2] == ["I vent: Shadow Init", "I vent: Shadow Connect"]
    assert (
        lines[2] == f"init uri=mqtts://{HUB}:8883 client_id=vent-04 username={user} keepalive=600"
    )
    assert "subscribe $iothub/twin/PATCH/properties/desired/# 1" in lines
    assert "subscribe $iothub/twin/res/# 1" in lines
    assert "I vent: Delta - Vent state changed to 1" in lines
    assert lines.count("I vent: Update accepted") == 2
    assert reported_patches(lines) == [
        {"temperature": 25, "ventOpen": False},
        {"temperature": 25.5, "ventOpen": False},
        {"temperature": 26, "ventOpen": True},
    ]


def test_smart_plug_raw_shadow_topics_map_to_the_twin(tmp_path):
    # Its client id comes from the MAC: the device id is given at patch time.
    _, binary = build(tmp_path, "smart_plug", "main/plug.c", "literal:plug-22")
    desired = '$iothub/twin/PATCH/properties/desired/?$version=5|{"on":true,"$version":5}'
    lines = run(binary, ["nothing yet", desired], ticks=3)
    user = f"{HUB}/plug-22/?api-version=2021-04-12"
    assert (
        lines[0] == f"init uri=mqtts://{HUB}:8883 client_id=plug-22 username={user} keepalive=1177"
    )
    assert reported_patches(lines) == [{"on": False, "fw": "2.4.1"}, {"on": True, "fw": "2.4.1"}]
    power = events(lines, "plug-22")
    assert [body for _, body in power] == [{"watts": 0, "on": 0}, {"watts": 1150, "on": 1}]
    assert power[0][0] == topic_properties("dt/plugs/plug-22/power")


def test_esp_idf_v4_layout_compiles_too(tmp_path):
    _, binary = build(tmp_path, "smart_plug", "main/plug.c", "literal:plug-22", "-DESP_IDF_V4")
    lines = run(binary, [], ticks=2)
    assert lines[0].startswith(f"init uri=mqtts://{HUB}:8883 client_id=plug-22")
    assert lines[1] == "trust digicert_g2=1 microsoft_rsa_2017=1 certificate=pem"


def test_sas_and_env_device_ids_are_refused_with_the_reason(tmp_path):
    repo = tmp_path / "plug"
    shutil.copytree(CORPUS / "c_esp_aws_iot/smart_plug", repo)
    for options, reason in [
        (PatchOptions(hub=HUB, auth="sas"), "HMAC-SHA256 token generation"),
        (PatchOptions(hub=HUB, device_id=DeviceIdSource.parse("env:ID")), "no environment"),
    ]:
        outcome = patch(repo, options)
        plug = [p for p in outcome.report.touch_points if p.file == "main/plug.c"]
        assert {p.verdict for p in plug} == {"needs_human"}
        assert all(reason in p.reason for p in plug)
