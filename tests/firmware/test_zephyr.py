"""Zephyr MQTT programs: patched with tree-sitter-c, compiled with gcc against a stub
Zephyr MQTT client that prints what the program would send, and run."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote

import pytest

from bridge.firmware import PatchOptions, patch
from bridge.mapping.topics import topic_properties
from firmware_patches._c import error_count, parse_c
from tests.firmware.conftest import CORPUS

STUBS = Path(__file__).parent / "stubs" / "zephyr"
HUB = "myhub.azure-devices.net"
GCC = shutil.which("gcc")
pytestmark = pytest.mark.skipif(GCC is None, reason="gcc is not installed")


def run_program(tmp_path, name, calls):
    repo = tmp_path / name
    shutil.copytree(CORPUS / "c_zephyr_mqtt" / name, repo)
    source = repo / "src" / "main.c"
    before = source.read_bytes()
    outcome = patch(repo, PatchOptions(hub=HUB), apply=True)
    assert "src/main.c" in outcome.changed
    assert error_count(parse_c(source.read_bytes())) <= error_count(parse_c(before))
    # Zephyr's build turns prj.conf into autoconf.h; so does the test.
    conf = repo / "prj.conf"
    values = [line.split("=", 1) for line in conf.read_text().splitlines()] if conf.exists() else []
    autoconf = tmp_path / "autoconf.h"
    autoconf.write_text("".join(f"#define {k} {'1' if v == 'y' else v}\n" for k, v in values))
    main = tmp_path / "probe.c"
    main.write_text(f'#include "{source}"\nint main(void) {{ {calls} return 0; }}\n')
    binary = tmp_path / "program"
    flags = ["-std=gnu11", "-Wall", "-Werror", "-Wno-unused-function", "-Wno-unused-variable"]
    includes = ["-I", str(STUBS), "-include", str(autoconf)]
    subprocess.run([GCC, *flags, *includes, "-o", str(binary), str(main)], check=True)
    return subprocess.run(
        [str(binary)], capture_output=True, text=True, check=True
    ).stdout.splitlines()


def bag(topic):
    prefix, _, properties = topic.partition("/messages/events/")
    pairs = dict(pair.split("=") for pair in properties.split("&"))
    return prefix, {k: unquote(v) for k, v in pairs.items()}


def test_nrf9160_tracker(tmp_path):
    calls = 'app_connect(); app_subscribe(); app_publish("{\\"lat\\":1}");'
    connect, subscribe, publish = run_program(tmp_path, "nrf9160_tracker", calls)
    user = f"{HUB}/tracker-nrf-7/?api-version=2021-04-12"
    assert connect == (
        f"connect host={HUB} client_id=tracker-nrf-7 user={user} password=(none) keepalive=1177"
    )
    assert subscribe == "subscribe devices/tracker-nrf-7/messages/devicebound/#"
    verb, topic, payload = publish.split(" ")
    assert (verb, payload) == ("publish", '{"lat":1}')
    assert bag(topic) == (
        "devices/tracker-nrf-7",
        topic_properties("trackers/tracker-nrf-7/location"),
    )


def test_cold_chain_with_kconfig_settings(tmp_path):
    connect, publish = run_program(
        tmp_path, "cold_chain", 'logger_connect(); logger_publish("{}");'
    )
    user = f"{HUB}/cold-chain-31/?api-version=2021-04-12"
    assert connect == (
        f"connect host={HUB} client_id=cold-chain-31 user={user} password=(none) keepalive=300"
    )
    _, topic, _ = publish.split(" ")
    assert bag(topic) == ("devices/cold-chain-31", topic_properties("coldchain/cold-chain-31/temp"))


def test_shadow_client_connects_but_its_shadow_publish_needs_a_human(tmp_path):
    connect, publish = run_program(tmp_path, "shadow_client", "shadow_connect(); shadow_report();")
    assert connect.startswith(f"connect host={HUB} client_id=gateway-z-4 user={HUB}/gateway-z-4/")
    assert publish.startswith("publish $aws/things/gateway-z-4/shadow/update ")
    report = patch(CORPUS / "c_zephyr_mqtt/shadow_client", PatchOptions(hub=HUB)).report
    publishes = [p for p in report.touch_points if p.kind == "topic"]
    assert {p.verdict for p in publishes} == {"needs_human"}
