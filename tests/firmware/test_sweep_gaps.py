"""Gaps a sweep over public device code found after `test_real_code.py`.

Each test is a minimal reproduction in the shape of the public program it came from
(named in the test), not a copy, and fails without the fix it guards.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bridge.cli import app
from bridge.firmware import DeviceIdSource, PatchOptions, patch, scan
from bridge.firmware.report import to_html, to_markdown
from firmware_patches.node_aws_iot_device_sdk import error_count, parse_js
from tests.firmware.conftest import patch_repo, program_env, provision, run_program, telemetry

HUB = "myhub.azure-devices.net"
STUBS = Path(__file__).parent / "stubs" / "arduino"
GXX = shutil.which("g++")

PAHO = """\
import paho.mqtt.client as mqtt

client = mqtt.Client(client_id="meter-1")
client.tls_set(ca_certs="AmazonRootCA1.pem", certfile="cert.pem", keyfile="key.pem")
client.connect("a1b2c3-ats.iot.eu-west-1.amazonaws.com", 8883, keepalive=60)
client.publish("meters/1", "{}")
"""


def _generated(size: int) -> str:
    """PAHO followed by a generated table (the shape of a 2 MB vendored lookup module)."""
    rows = [PAHO, "TABLE = [\n"]
    total = len(PAHO)
    index = 0
    while total < size:
        row = f"    ({index}, 'entry-{index:08d}', {index * 3.5}),\n"
        rows.append(row)
        total += len(row)
        index += 1
    rows.append("]\n")
    return "".join(rows)


def test_a_file_over_the_rewrite_limit_is_reported_not_parsed(tmp_path):
    # A 2 MB Python file took over 60 s (LibCST's parse alone 35 s).
    (tmp_path / "big.py").write_text(_generated(2 * 1024 * 1024 - 4096), encoding="utf-8")
    started = time.perf_counter()
    outcome = patch(tmp_path, PatchOptions(hub=HUB))
    elapsed = time.perf_counter() - started
    assert elapsed < 15, elapsed  # was over 60 s
    assert outcome.changed == {}
    (file,) = outcome.report.files
    assert file.stack == "python_paho"
    first = file.touch_points[0]
    assert (first.line, first.kind, first.verdict) == (1, "too_large", "needs_human")
    assert first.reason.startswith("too large to rewrite safely: ")
    assert all(point.verdict == "needs_human" for point in file.touch_points)
    assert {"endpoint", "client_id"} <= {point.kind for point in file.touch_points}


def test_the_rewrite_limit_is_configurable(tmp_path):
    (tmp_path / "main.py").write_text(PAHO, encoding="utf-8")
    small = PatchOptions(hub=HUB, max_rewrite_bytes=100)
    report = scan(tmp_path, small)
    assert report.files[0].touch_points[0].kind == "too_large"
    assert f"{len(PAHO.encode())} bytes" in report.files[0].touch_points[0].reason
    assert patch(tmp_path, PatchOptions(hub=HUB)).changed  # under the default: rewritten


def test_large_files_without_aws_iot_stay_cheap(tmp_path):
    (tmp_path / "table.py").write_text(_generated(1024 * 1024).replace(PAHO, ""), encoding="utf-8")
    started = time.perf_counter()
    report = scan(tmp_path)
    assert time.perf_counter() - started < 2
    assert report.files == []
    assert report.files_scanned == 1


# aws-samples/lets-build-on-aws-iot, module-2/call-waiter-button: the sketch's main tab
# defines the thing name and the publish topic; the AWS.ino tab, which the Arduino IDE
# concatenates after it, configures TLS and connects.
SKETCH_MAIN = """\
#include <WiFiClientSecure.h>
#include <MQTTClient.h>

#include "secrets.h"

#define AWS_THING_NAME "table-13"
#define AWS_IOT_PUBLISH_BUTTON "callwaiter/button"

WiFiClientSecure net = WiFiClientSecure();
MQTTClient client = MQTTClient(512);

void setup() {
  connectAWS();
}

void loop() {
  client.loop();
  client.publish(AWS_IOT_PUBLISH_BUTTON, "{\\"tableNumber\\":13}");
}
"""
SKETCH_AWS = """\
void connectAWS() {
  net.setCACert(AWS_CERT_CA);
  net.setCertificate(AWS_CERT_CRT);
  net.setPrivateKey(AWS_CERT_PRIVATE);

  client.begin(AWS_IOT_ENDPOINT, 8883, net);

  while (!client.connect(AWS_THING_NAME)) {
    delay(100);
  }
}
"""
SKETCH_SECRETS = """\
#define AWS_IOT_ENDPOINT "a1b2c3d4e5f6g7-ats.iot.eu-west-1.amazonaws.com"
static const char AWS_CERT_CA[] = "-----BEGIN CERTIFICATE-----\\n";
static const char AWS_CERT_CRT[] = "-----BEGIN CERTIFICATE-----\\n";
static const char AWS_CERT_PRIVATE[] = "device key from secure storage";
"""


def _sketch(root):
    folder = root / "call-waiter-button"
    folder.mkdir()
    (folder / "call-waiter-button.ino").write_text(SKETCH_MAIN, encoding="utf-8")
    (folder / "AWS.ino").write_text(SKETCH_AWS, encoding="utf-8")
    (folder / "secrets.h").write_text(SKETCH_SECRETS, encoding="utf-8")
    return folder


def test_a_sketch_tab_without_the_library_include_is_the_sketchs_stack(tmp_path):
    # AWS.ino, holding connect(), was classified `generic` and never rewritten.
    _sketch(tmp_path)
    report = scan(tmp_path)
    stacks = {file.file: file.stack for file in report.files}
    assert stacks["call-waiter-button/AWS.ino"] == "arduino_mqtt"
    assert stacks["call-waiter-button/call-waiter-button.ino"] == "arduino_mqtt"


def test_a_defined_topic_is_a_constant_topic_not_a_run_time_one(tmp_path):
    # The #define'd topic was refused as "built at run time", and that refusal was then
    # stamped on the file's client id and config key lines too.
    _sketch(tmp_path)
    report = scan(tmp_path)
    main = next(f for f in report.files if f.file.endswith("call-waiter-button.ino"))
    assert [p for p in main.touch_points if p.verdict == "needs_human"] == []
    assert not any("run time" in p.reason for p in report.touch_points)
    # The topic define and its use are topics, not endpoint settings (AWS_IOT_ prefix).
    kinds = {(p.line, p.kind) for p in main.touch_points}
    assert {(7, "topic"), (18, "topic")} <= kinds
    assert not {(7, "config_key"), (18, "config_key")} & kinds
    outcome = patch(tmp_path, PatchOptions(hub=HUB))
    main_text = outcome.changed["call-waiter-button/call-waiter-button.ino"]
    assert (
        '#define AWS_IOT_PUBLISH_BUTTON "devices/" AWS_THING_NAME "/messages/events/'
        'awsTopic=callwaiter%2Fbutton&awsTopic1=callwaiter&awsTopic2=button"'
    ) in main_text
    aws_text = outcome.changed["call-waiter-button/AWS.ino"]
    assert "client.connect(AWS_THING_NAME, IOTHUB_USER, NULL)" in aws_text
    assert "net.setCACert(IOTHUB_ROOT_CAS)" in aws_text


def test_a_topic_without_a_client_id_says_so(tmp_path):
    # With no connect() anywhere in the sketch the reason names what is missing.
    folder = _sketch(tmp_path)
    (folder / "AWS.ino").write_text(SKETCH_AWS.replace("connect(AWS_THING_NAME)", "connect()"))
    report = scan(tmp_path)
    reasons = {p.reason for p in report.touch_points if p.file.endswith("button.ino")}
    assert any("no connect(CLIENT_ID) in the sketch" in reason for reason in reasons)
    assert not any("run time" in reason for reason in reasons)


@pytest.mark.skipif(GXX is None, reason="g++ is not installed")
def test_the_patched_sketch_compiles_as_one_unit_and_publishes_to_iothub(tmp_path):
    folder = _sketch(tmp_path)
    patch(tmp_path, PatchOptions(hub=HUB), apply=True)
    # What the Arduino IDE builds: the main tab, then the others, prototypes first.
    probe = tmp_path / "probe.cpp"
    probe.write_text(
        "void connectAWS();\n"
        '#include "call-waiter-button.ino"\n#include "AWS.ino"\n'
        "int main() { setup(); loop(); return 0; }\n"
    )
    binary = tmp_path / "probe"
    flags = ["-std=c++17", "-Wall", "-Werror", "-Wno-unused-variable", "-I", str(STUBS)]
    subprocess.run([GXX, *flags, "-I", str(folder), "-o", str(binary), str(probe)], check=True)
    calls = subprocess.run([str(binary)], capture_output=True, text=True, check=True).stdout
    user = f"{HUB}/table-13/?api-version=2021-04-12"
    assert calls.splitlines()[:3] == [
        "buffer 1024",
        f"begin {HUB} 8883",
        f"connect table-13 {user} (none)",
    ]
    assert "publish devices/table-13/messages/events/awsTopic=callwaiter%2Fbutton" in calls


def test_symlinks_and_utf16_sources_are_reported_as_skipped(tmp_path):
    # A sweep repository held a link to another checkout's paho script, a link out of
    # the tree and a UTF-16 Python file: all three vanished from the report uncounted
    # (the UTF-16 one counted as a binary).
    repo = tmp_path / "repo"
    (repo / "src").mkdir(parents=True)
    (repo / "src" / "main.py").write_text(PAHO, encoding="utf-8")
    (repo / "src" / "same.py").symlink_to("main.py")
    (tmp_path / "elsewhere.py").write_text(PAHO, encoding="utf-8")
    (repo / "src" / "outside.py").symlink_to(tmp_path / "elsewhere.py")
    (repo / "loop").symlink_to(repo)
    (repo / "src" / "wide.py").write_bytes(PAHO.encode("utf-16"))
    report = scan(repo)
    assert [file.file for file in report.files] == ["src/main.py"]  # nothing followed
    why = {skipped.file: skipped.reason for skipped in report.skipped}
    assert why["src/outside.py"].startswith("symlink to a path outside the repository")
    assert why["src/same.py"] == "symlink to src/main.py: not followed, scanned there"
    assert why["loop"].startswith("symlink to .:")
    assert why["src/wide.py"].startswith("UTF-16 source: not scanned")
    assert report.files_skipped == 4
    assert "src/wide.py | UTF-16 source: not scanned" in to_markdown(report)
    assert "symlink to a path outside the repository" in to_html(report)


# AWSIoTPythonSDK's samples/basicPubSub/basicPubSub.py and awsiotsdk's samples/pubsub.py:
# usage text and argparse help name the root CA option, which is no root CA in use.
USAGE = '''\
import argparse
import paho.mqtt.client as mqtt

usageInfo = """Usage:
python pub.py -e <endpoint> -r <rootCAFilePath> -c <certFilePath>
-r, --rootCA
"""
parser = argparse.ArgumentParser(usage="pub.py -r <rootCAFilePath>")
parser.add_argument("--ca", help="File path to the rootCA, " +
                    "in PEM format (AmazonRootCA1.pem)", default="root-CA.crt")
args = parser.parse_args()
if not args.ca:
    print("Missing '-r' or '--rootCA'", usageInfo)
client = mqtt.Client(client_id="meter-1")
client.tls_set(ca_certs=args.ca, certfile="cert.pem", keyfile="key.pem")
client.connect("a1b2c3-ats.iot.eu-west-1.amazonaws.com", 8883)
'''


def test_root_ca_in_help_and_usage_text_is_not_a_touch_point(tmp_path):
    (tmp_path / "pub.py").write_text(USAGE, encoding="utf-8")
    report = scan(tmp_path)
    lines = sorted(p.line for p in report.touch_points if p.kind == "root_ca")
    # 5, 6: the usage block; 8: usage=; 9: help=; 12: print. 10 holds a default file
    # name beside help text: still the root CA the program loads.
    assert lines == [10]


# aws-iot-device-sdk-js's examples/device-example.js and thing-example.js load the SDK
# from the repository they live in; the pre-check did not even read them.
NODE_IN_REPO_DEVICE = """\
const deviceModule = require('..').device;
const cmdLineProcess = require('./lib/cmdline');

function processTest(args) {
   const device = deviceModule({
      keyPath: args.privateKey,
      certPath: args.clientCert,
      caPath: args.caCert,
      clientId: args.clientId,
      host: args.Host,
   });
   device.subscribe('topic_1');
   setInterval(() => device.publish('topic_2', JSON.stringify({ mode1Process: 1 })), 1000);
}
module.exports = cmdLineProcess;
"""
NODE_IN_REPO_THING = """\
const thingShadow = require('..').thingShadow;

function processTest(args) {
  const thingShadows = thingShadow({
    keyPath: args.privateKey,
    certPath: args.clientCert,
    caPath: args.caCert,
    clientId: args.clientId,
    host: args.Host,
  });
  thingShadows.on('connect', () => thingShadows.register('RGBLedLamp', {}, () => {}));
}
"""


def test_node_v1_sdk_loaded_from_its_own_repository_is_rewritten(tmp_path):
    examples = tmp_path / "examples"
    examples.mkdir()
    (examples / "device-example.js").write_text(NODE_IN_REPO_DEVICE, encoding="utf-8")
    (examples / "thing-example.js").write_text(NODE_IN_REPO_THING, encoding="utf-8")
    outcome = patch(tmp_path, PatchOptions(hub=HUB, device_id=DeviceIdSource("env", "DEV")))
    stacks = {file.file: file.stack for file in outcome.report.files}
    assert stacks == {
        "examples/device-example.js": "node_aws_iot_device_sdk",
        "examples/thing-example.js": "node_aws_iot_device_sdk",
    }
    assert outcome.report.counts()["needs_human"] == 0
    device = outcome.changed["examples/device-example.js"]
    assert "const deviceModule = iothubDevice;" in device
    assert "require('..')" not in device
    assert "host: IOTHUB_HOST," in device
    assert "clientId: process.env.DEV," in device
    thing = outcome.changed["examples/thing-example.js"]
    assert "const thingShadow = iothubThingShadow;" in thing
    for text in (device, thing):
        assert error_count(parse_js(text.encode())) == 0


def test_a_relative_require_without_the_sdks_shape_is_not_the_sdk(tmp_path):
    (tmp_path / "app.js").write_text(
        "const lib = require('..');\nconst device = lib.device({ name: 'pump' });\n"
        "const certPath = lib.thingShadow;\n",
        encoding="utf-8",
    )
    assert scan(tmp_path).files == []


# awsiotsdk v2's samples/pubsub.py: X.509 by default, SigV4 websockets on request.
V2_PUBSUB = """\
import argparse
import json
from awscrt import mqtt
from awsiot import mqtt_connection_builder

parser = argparse.ArgumentParser()
parser.add_argument("--endpoint", default="a1b2c3-ats.iot.eu-west-1.amazonaws.com")
parser.add_argument("--cert", default="certs/device.pem.crt")
parser.add_argument("--key", default="certs/private.pem.key")
parser.add_argument("--client-id", default="pump-7")
parser.add_argument("--use-web-socket", default=False, action="store_true")
parser.add_argument("--signing-region", default="eu-west-1")
args = parser.parse_args()

if args.use_web_socket:
    mqtt_connection = mqtt_connection_builder.websockets_with_default_aws_signing(
        endpoint=args.endpoint,
        region=args.signing_region,
        client_id=args.client_id,
        clean_session=False,
        keep_alive_secs=6)
else:
    mqtt_connection = mqtt_connection_builder.mtls_from_path(
        endpoint=args.endpoint,
        cert_filepath=args.cert,
        pri_key_filepath=args.key,
        client_id=args.client_id,
        clean_session=False,
        keep_alive_secs=6)

mqtt_connection.connect().result()
future, _ = mqtt_connection.publish(
    topic="pumps/pump-7/flow", payload=json.dumps({"litres": 3}), qos=mqtt.QoS.AT_LEAST_ONCE)
future.result()
mqtt_connection.disconnect().result()
"""
# AWSIoTPythonSDK v1's samples/basicPubSub/basicPubSub.py: -w selects SigV4.
V1_BASIC = """\
import sys
from AWSIoTPythonSDK.MQTTLib import AWSIoTMQTTClient

host = "a1b2c3-ats.iot.eu-west-1.amazonaws.com"
useWebsocket = False
if "-w" in sys.argv:
\tuseWebsocket = True

myAWSIoTMQTTClient = None
if useWebsocket:
\tmyAWSIoTMQTTClient = AWSIoTMQTTClient("basicPubSub", useWebsocket=True)
\tmyAWSIoTMQTTClient.configureEndpoint(host, 443)
\tmyAWSIoTMQTTClient.configureCredentials("root-CA.crt")
else:
\tmyAWSIoTMQTTClient = AWSIoTMQTTClient("basicPubSub")
\tmyAWSIoTMQTTClient.configureEndpoint(host, 8883)
\tmyAWSIoTMQTTClient.configureCredentials("root-CA.crt", "private.pem.key", "certificate.pem.crt")

myAWSIoTMQTTClient.connect()
myAWSIoTMQTTClient.publish("sdk/test/Python", "hello", 1)
"""


def test_v2_sample_x509_path_is_rewritten_and_only_the_websocket_branch_needs_a_human(
    tmp_path,
):
    # Every line of the sample used to say "SigV4 websocket", the X.509 path included.
    (tmp_path / "pubsub.py").write_text(V2_PUBSUB, encoding="utf-8")
    outcome = patch(tmp_path, PatchOptions(hub=HUB))
    human = {p.line for p in outcome.report.touch_points if p.verdict == "needs_human"}
    assert human == {16, 19, 21}  # the websocket builder, its client id and keep-alive
    assert all("IoT Hub has no SigV4" in p.reason for p in outcome.report.touch_points
               if p.verdict == "needs_human")  # fmt: skip
    rewritten = {p.line for p in outcome.report.touch_points if p.verdict == "rewritten"}
    assert {7, 25, 26, 27, 29, 32} <= rewritten
    text = outcome.changed["pubsub.py"]
    assert "IoTHubDeviceClient.create_from_x509_certificate(" in text
    assert "websockets_with_default_aws_signing" not in text
    assert "raise RuntimeError('iot-bridge: IoT Hub has no SigV4 websockets" in text
    compile(text, "pubsub.py", "exec")


def test_v2_sample_runs_on_iothub_and_its_websocket_flag_says_why_it_cannot(hub, rm, tmp_path):
    (tmp_path / "pubsub.py").write_text(V2_PUBSUB, encoding="utf-8")
    patch_repo(tmp_path, hub.hostname)
    provision(rm, tmp_path, "pump-7", "certs/device.pem.crt", "certs/private.pem.key")
    result = run_program(hub, tmp_path, "pubsub.py")
    assert result.returncode == 0, result.stderr
    (event,) = telemetry(hub, "pump-7")
    assert event.properties["awsTopic"] == "pumps/pump-7/flow"
    assert json.loads(event.body) == {"litres": 3}
    refused = subprocess.run(
        [sys.executable, "pubsub.py", "--use-web-socket"],
        cwd=tmp_path, capture_output=True, text=True, check=False, timeout=60,
        env=program_env(hub, tmp_path),
    )  # fmt: skip
    assert refused.returncode != 0
    assert "IoT Hub has no SigV4 websockets" in refused.stderr
    assert len(telemetry(hub, "pump-7")) == 1


def test_v1_sample_x509_client_is_rewritten_and_the_websocket_branch_raises(tmp_path):
    (tmp_path / "basicPubSub.py").write_text(V1_BASIC, encoding="utf-8")
    outcome = patch(tmp_path, PatchOptions(hub=HUB))
    human = {p.line: p.reason for p in outcome.report.touch_points if p.verdict == "needs_human"}
    assert set(human) == {7, 11, 13}  # the -w flag and the websocket branch
    assert all(reason.startswith("SigV4 websocket branch") for reason in human.values())
    rewritten = {p.line for p in outcome.report.touch_points if p.verdict == "rewritten"}
    assert {4, 17, 20} <= rewritten  # endpoint, certificate, publish
    text = outcome.changed["basicPubSub.py"]
    assert '\tmyAWSIoTMQTTClient = iothub_v1_client("basicPubSub")\n' in text
    assert "useWebsocket=True" not in text
    assert "\traise RuntimeError('iot-bridge: IoT Hub has no SigV4 websockets" in text
    compile(text, "basicPubSub.py", "exec")


def test_a_websocket_only_program_is_still_refused_as_a_whole(tmp_path):
    # No X.509 side to keep: nothing is rewritten, as before.
    branch = V2_PUBSUB.index("if args.use_web_socket:")
    builder = V2_PUBSUB.index("    mqtt_connection = mqtt_connection_builder.websockets")
    after = V2_PUBSUB.index("else:\n")
    rest = V2_PUBSUB.index("mqtt_connection.connect()")
    only = V2_PUBSUB[:branch] + "if True:\n" + V2_PUBSUB[builder:after] + V2_PUBSUB[rest:]
    (tmp_path / "pubsub.py").write_text(only, encoding="utf-8")
    outcome = patch(tmp_path, PatchOptions(hub=HUB))
    assert outcome.changed == {}
    assert outcome.report.counts()["rewritten"] == 0
    assert any(
        "SigV4 websocket: IoT Hub needs X.509" in p.reason for p in outcome.report.touch_points
    )


def test_an_endpoint_in_help_text_is_not_claimed_rewritten(tmp_path):
    # samples/pubsub.py: help="... Ex: \"abcd123456wxyz-ats.iot.us-east-1.amazonaws.com\""
    # was reported "rewritten" though the patch leaves help text alone. An endpoint in a
    # triple-quoted string may be a settings template, so that one is still reported.
    program = USAGE.replace(
        "args = parser.parse_args()\n",
        'parser.add_argument("--endpoint", help="Your AWS IoT custom endpoint. " +\n'
        '                    "Ex: abcd123456wxyz-ats.iot.us-east-1.amazonaws.com")\n'
        'TEMPLATE = """{"host": "abcd123456wxyz-ats.iot.us-east-1.amazonaws.com"}"""\n'
        "args = parser.parse_args()\n",
    )
    (tmp_path / "pub.py").write_text(program, encoding="utf-8")
    endpoints = sorted(p.line for p in scan(tmp_path).touch_points if p.kind == "endpoint")
    assert endpoints == [13, 19]  # the template and the connect() call; not the help, 12


def test_the_rewrite_limit_is_an_option_of_scan_and_patch(tmp_path):
    (tmp_path / "main.py").write_text(PAHO, encoding="utf-8")
    runner = CliRunner()
    scanned = runner.invoke(
        app, ["firmware", "scan", str(tmp_path), "--format", "json", "--max-rewrite-bytes", "64"]
    )
    assert scanned.exit_code == 0, scanned.output
    (file,) = json.loads(scanned.stdout)["files"]
    assert file["touch_points"][0]["kind"] == "too_large"
    patched = runner.invoke(
        app, ["firmware", "patch", str(tmp_path), "--hub", HUB, "--max-rewrite-bytes", "64"]
    )
    assert patched.exit_code == 0, patched.output
    assert patched.stdout == ""  # nothing rewritten
    assert "0 files to patch" in patched.stderr
