"""ESP-IDF programs on esp-mqtt: patched with tree-sitter-c, compiled with gcc against a
stub esp-mqtt that prints what the program would send, and run."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote

import pytest

from bridge.firmware import PatchOptions, patch
from bridge.mapping.topics import topic_properties
from firmware_patches._c import error_count, parse_c
from tests.firmware.conftest import CORPUS

STUBS = Path(__file__).parent / "stubs" / "esp-idf"
HUB = "myhub.azure-devices.net"
GCC = shutil.which("gcc")
pytestmark = pytest.mark.skipif(GCC is None, reason="gcc is not installed")


def run_program(tmp_path, name, source, *defines):
    repo = tmp_path / name
    shutil.copytree(CORPUS / "c_esp_mqtt" / name, repo)
    before = (repo / source).read_bytes()
    patch(repo, PatchOptions(hub=HUB), apply=True)
    assert error_count(parse_c((repo / source).read_bytes())) <= error_count(parse_c(before))
    # ESP-IDF generates sdkconfig.h from sdkconfig; so does the test.
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
    return subprocess.run(
        [str(binary)], capture_output=True, text=True, check=True
    ).stdout.splitlines()


def bag(topic):
    prefix, _, properties = topic.partition("/messages/events/")
    pairs = dict(pair.split("=") for pair in properties.split("&"))
    return prefix, {k: unquote(v) for k, v in pairs.items()}


def test_pump_controller_v5_config(tmp_path):
    init, trust, subscribe, publish = run_program(tmp_path, "pump_controller", "main/app_main.c")
    user = f"{HUB}/pump-3/?api-version=2021-04-12"
    assert init == f"init uri=mqtts://{HUB}:8883 client_id=pump-3 username={user} keepalive=1177"
    # The AWS root CA the program embedded is replaced by IoT Hub's two roots.
    assert trust == "trust digicert_g2=1 microsoft_rsa_2017=1 certificate=pem"
    assert subscribe == "subscribe $iothub/twin/PATCH/properties/desired/# 1"
    verb, topic, payload, qos = publish.split(" ")
    assert (verb, payload, qos) == ("publish", '{"lpm":12}', "1")
    assert bag(topic) == ("devices/pump-3", topic_properties("dt/pumps/pump-3/flow"))


def test_boiler_v4_config(tmp_path):
    init, subscribe, publish = run_program(tmp_path, "boiler_v4", "main/boiler.c", "-DESP_IDF_V4")
    user = f"{HUB}/boiler-esp-1/?api-version=2021-04-12"
    assert (
        init == f"init uri=mqtts://{HUB}:8883 client_id=boiler-esp-1 username={user} keepalive=60"
    )
    assert subscribe == "subscribe devices/boiler-esp-1/messages/devicebound/# 1"
    _, topic, _, _ = publish.split(" ")
    assert bag(topic) == ("devices/boiler-esp-1", topic_properties("boilers/boiler-esp-1/pressure"))


def test_esp_aws_iot_sdk_program_is_left_to_its_own_recipe(tmp_path):
    # esp-aws-iot programs are the c_esp_aws_iot recipe's (tests/firmware/test_esp_aws_iot.py);
    # their vendored SDK copy is still reported and never edited.
    repo = tmp_path / "shadow"
    shutil.copytree(CORPUS / "c_esp_mqtt/aws_sdk_shadow", repo)
    vendored = repo / "components/esp-aws-iot/libraries/aws_iot_mqtt_client.c"
    before = vendored.read_text()
    outcome = patch(repo, PatchOptions(hub=HUB), apply=True)
    main = [f for f in outcome.report.files if f.file == "main/shadow_main.c"]
    assert [f.stack for f in main] == ["c_esp_aws_iot"]
    assert {p.verdict for p in main[0].touch_points} == {"rewritten"}
    [copy] = [f for f in outcome.report.files if f.vendored]
    assert copy.file == "components/esp-aws-iot/libraries/aws_iot_mqtt_client.c"
    assert vendored.read_text() == before
