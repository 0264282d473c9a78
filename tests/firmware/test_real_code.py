"""Shapes found in public device code, each once broken by the scanner or the patcher.

Minimal reproductions in the style of the public programs they came from (named in each
test), not copies.
"""

from __future__ import annotations

import tarfile

from bridge.firmware import PatchOptions, patch, scan
from bridge.firmware.package import build_package
from firmware_patches.node_aws_iot_device_sdk import error_count, parse_js

HUB = "myhub.azure-devices.net"

# The shape of an M5Stack MicroPython publisher (richardbw/m5stack,
# rbw_PubSub01/micropython_mqqt-pub.py): umqtt.simple straight at the AWS endpoint.
UMQTT = """\
#  desc: capteur de température, salle {room}
import time
from umqtt.simple import MQTTClient

CLIENT_ID = "m5stack_test"
ENDPOINT = "a22d4aoxca2zot-ats.iot.us-east-1.amazonaws.com"
with open("/cert.pem", "r") as f: cert1 = f.read()
with open("/key.pem", "r") as f: key1 = f.read()

mqtt = MQTTClient(client_id=CLIENT_ID, server=ENDPOINT, port=8883, keepalive=10000,
                  ssl=True, ssl_params={{"cert": cert1, "key": key1}})
mqtt.connect()
mqtt.publish(topic="rbw/test/micropython", msg="température °C", qos=0)
"""


def test_a_latin1_file_is_written_back_in_latin1(tmp_path):
    # Real repositories still hold Latin-1 sources; --apply used to re-encode the whole
    # file as UTF-8, changing bytes (comments, LCD strings) far from any edit.
    original = UMQTT.format(room="éèà").encode("latin-1")
    (tmp_path / "main.py").write_bytes(original)
    outcome = patch(tmp_path, PatchOptions(hub=HUB), apply=True)
    written = (tmp_path / "main.py").read_bytes()
    assert outcome.changed == {"main.py": written.decode("latin-1")}
    assert HUB.encode() in written
    assert "température °C".encode("latin-1") in written
    assert "température".encode() not in written  # not re-encoded as UTF-8
    assert written.startswith(original.splitlines(keepends=True)[0])  # untouched line


def test_a_latin1_file_is_packaged_in_latin1(tmp_path):
    (tmp_path / "main.py").write_bytes(UMQTT.format(room="é").encode("latin-1"))
    outcome = patch(tmp_path, PatchOptions(hub=HUB))
    build_package(tmp_path, outcome.data, tmp_path / "ota.tar.gz")
    with tarfile.open(tmp_path / "ota.tar.gz") as archive:
        member = archive.extractfile("main.py")
        assert member is not None
        packaged = member.read()
    assert packaged == outcome.data["main.py"]
    assert "salle é".encode("latin-1") in packaged


def test_crlf_files_keep_crlf_line_endings(tmp_path):
    # Windows-edited repositories (paho and umqtt samples saved with CRLF): the injected
    # block came back with bare LFs, leaving the file with mixed line endings.
    (tmp_path / "main.py").write_bytes(UMQTT.format(room="1").replace("\n", "\r\n").encode())
    outcome = patch(tmp_path, PatchOptions(hub=HUB), apply=True)
    written = (tmp_path / "main.py").read_bytes()
    assert HUB.encode() in written
    assert written.count(b"\n") == written.count(b"\r\n")
    assert b"\r\r\n" not in written
    compile(written, "main.py", "exec")
    assert outcome.report.counts()["rewritten"] > 0


def test_lf_files_stay_lf(tmp_path):
    (tmp_path / "main.py").write_text(UMQTT.format(room="1"), encoding="utf-8")
    patch(tmp_path, PatchOptions(hub=HUB), apply=True)
    assert b"\r" not in (tmp_path / "main.py").read_bytes()


def test_scan_reports_a_latin1_file_like_its_utf8_twin(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "main.py").write_bytes(UMQTT.format(room="é").encode("latin-1"))
    (tmp_path / "b" / "main.py").write_bytes(UMQTT.format(room="é").encode("utf-8"))
    points = {
        name: [(p.line, p.kind, p.verdict) for p in scan(tmp_path / name).touch_points]
        for name in ("a", "b")
    }
    assert points["a"] == points["b"]
    assert points["a"]


# The way AWS's own aws-iot-device-sdk-js examples (examples/device-example.js,
# thing-example.js) bind the SDK, with the package name as users copy it.
NODE_MEMBER = """\
const deviceModule = require('aws-iot-device-sdk').device;

const device = deviceModule({
   keyPath: 'private.pem.key',
   certPath: 'certificate.pem.crt',
   caPath: 'AmazonRootCA1.pem',
   clientId: 'porch-light',
   host: 'abc123-ats.iot.us-east-1.amazonaws.com'
});
device.on('connect', function() { device.publish('topic_1', JSON.stringify({ on: 1 })); });
"""
NODE_DESTRUCTURED = """\
const { thingShadow: shadowOf } = require("aws-iot-device-sdk");

const shadows = shadowOf({
  keyPath: "k.pem", certPath: "c.pem", caPath: "ca.pem",
  clientId: "lamp-1", host: "abc123-ats.iot.eu-west-1.amazonaws.com",
});
shadows.on("connect", () => shadows.register("lamp-1", {}));
"""


def _node_patched(tmp_path, text):
    (tmp_path / "app.js").write_text(text, encoding="utf-8")
    outcome = patch(tmp_path, PatchOptions(hub=HUB))
    assert outcome.report.counts()["needs_human"] == 0, outcome.report.touch_points
    new = outcome.changed["app.js"]
    assert error_count(parse_js(new.encode())) == 0
    assert "require('aws-iot-device-sdk')" not in new
    assert 'require("aws-iot-device-sdk")' not in new
    assert "amazonaws.com" not in new
    return new


def test_node_v1_sdk_bound_by_member_is_rewritten(tmp_path):
    # Was refused with "aws-iot-device-sdk is not loaded with require()", which it is.
    new = _node_patched(tmp_path, NODE_MEMBER)
    assert "const deviceModule = iothubDevice;" in new
    assert "host: IOTHUB_HOST" in new
    assert "function iothubDevice(" in new


def test_node_v1_sdk_bound_by_destructuring_is_rewritten(tmp_path):
    new = _node_patched(tmp_path, NODE_DESTRUCTURED)
    assert "thingShadow: shadowOf } = { device: iothubDevice" in new
    assert "host: IOTHUB_HOST" in new
