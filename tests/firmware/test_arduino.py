"""Arduino sketches on PubSubClient: patched with tree-sitter-cpp, parsed, then compiled
with g++ against stub Arduino headers and run, the stub PubSubClient printing what the
sketch would send to IoT Hub."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote

import pytest

from bridge.firmware import PatchOptions, patch
from bridge.mapping.topics import topic_properties
from firmware_patches._c import parse_cpp
from firmware_patches.arduino_mqtt import error_count
from tests.firmware.conftest import CORPUS

STUBS = Path(__file__).parent / "stubs" / "arduino"
HUB = "myhub.azure-devices.net"
GXX = shutil.which("g++")


def run_sketch(tmp_path, name):
    repo = tmp_path / name
    shutil.copytree(CORPUS / "arduino_mqtt" / name, repo)
    originals = {p: p.read_bytes() for p in repo.iterdir() if p.suffix in {".ino", ".h"}}
    patch(repo, PatchOptions(hub=HUB), apply=True)
    for path, before in originals.items():
        assert error_count(parse_cpp(path.read_bytes())) <= error_count(parse_cpp(before))
    probe = tmp_path / "probe.cpp"
    probe.write_text(
        f'#include "{name}.ino"\nint main() {{ setup(); loop(); stub_deliver("1"); return 0; }}\n'
    )
    binary = tmp_path / "probe"
    flags = ["-std=c++17", "-Wall", "-Werror", "-Wno-unused-variable", "-I", str(STUBS)]
    subprocess.run([GXX, *flags, "-I", str(repo), "-o", str(binary), str(probe)], check=True)
    result = subprocess.run([str(binary)], capture_output=True, text=True, check=True)
    return result.stdout.splitlines()


def bag(topic):
    prefix, _, properties = topic.partition("/messages/events/")
    pairs = dict(pair.split("=") for pair in properties.split("&"))
    return prefix, {k: unquote(v) for k, v in pairs.items()}


pytestmark = pytest.mark.skipif(GXX is None, reason="g++ is not installed")


def test_esp32_weather_talks_iothub_mqtt(tmp_path):
    calls = run_sketch(tmp_path, "esp32_weather")
    user = f"{HUB}/weather-station-12/?api-version=2021-04-12"
    assert calls[:4] == [
        f"setServer {HUB} 8883",
        "setBufferSize 1024",
        "setKeepAlive 1177",
        f"connect weather-station-12 {user} (none)",
    ]
    assert calls[4] == "subscribe $iothub/twin/PATCH/properties/desired/#"
    verb, topic, payload = calls[5].split(" ")
    assert (verb, payload) == ("publish", '{"celsius":21.4}')
    prefix, properties = bag(topic)
    assert prefix == "devices/weather-station-12"
    assert properties == topic_properties("weather/weather-station-12/readings")


def test_esp8266_relay_takes_a_command_and_reports(tmp_path):
    calls = run_sketch(tmp_path, "esp8266_relay_bearssl")
    assert calls[0] == f"setServer {HUB} 8883"
    assert calls[2] == f"connect relay-8266-2 {HUB}/relay-8266-2/?api-version=2021-04-12 (none)"
    assert calls[3] == "subscribe devices/relay-8266-2/messages/devicebound/#"
    states = [line.split(" ") for line in calls if line.startswith("publish")]
    assert [payload for _, _, payload in states] == ['{"on":false}', '{"on":true}']
    prefix, properties = bag(states[0][1])
    assert prefix == "devices/relay-8266-2"
    assert properties == topic_properties("relays/relay-8266-2/state")


def test_esp32_256dpi_mqttclient_sketch(tmp_path):
    calls = run_sketch(tmp_path, "esp32_lwmqtt")
    user = f"{HUB}/greenhouse-esp32-6/?api-version=2021-04-12"
    assert calls[:4] == [
        "buffer 1024",
        f"begin {HUB} 8883",
        f"connect greenhouse-esp32-6 {user} (none)",
        "subscribe devices/greenhouse-esp32-6/messages/devicebound/#",
    ]
    publishes = [line.split(" ") for line in calls if line.startswith("publish")]
    assert [payload for _, _, payload in publishes] == ['{"humidity":58}', '{"ack":"1"}']
    prefix, properties = bag(publishes[0][1])
    assert prefix == "devices/greenhouse-esp32-6"
    assert properties == topic_properties("esp32/pub")


def test_nano33_arduinomqttclient_sketch(tmp_path):
    calls = run_sketch(tmp_path, "nano33_iot_meter")
    user = f"{HUB}/nano-meter-5/?api-version=2021-04-12"
    assert calls[0] == "keepalive_ms 1177000"
    assert calls[1] == f"connect {HUB} 8883 id=nano-meter-5 user={user} password=(none)"
    verb, topic, payload = calls[2].split(" ")
    assert (verb, payload) == ("publish", '{"watts":42}')
    assert bag(topic) == ("devices/nano-meter-5", topic_properties("meters/nano-meter-5/power"))
