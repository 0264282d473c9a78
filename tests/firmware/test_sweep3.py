"""Gaps a third sweep over public device code found after `test_sweep_gaps.py`.

Each test holds a trimmed excerpt of the public program it came from (named in the
test) and fails without the fix it guards.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.firmware import DeviceIdSource, PatchOptions, patch

HUB = "myhub.azure-devices.net"

# aws/aws-iot-device-sdk-python, samples/basicShadow/basicShadowUpdater.py (trimmed):
# the -w branch builds a SigV4 client and goes on configuring it.
V1_SHADOW_UPDATER = """\
import sys
import getopt
from AWSIoTPythonSDK.MQTTLib import AWSIoTMQTTShadowClient

useWebsocket = False
host = ""
rootCAPath = ""
certificatePath = ""
privateKeyPath = ""
opts, args = getopt.getopt(sys.argv[1:], "hwe:k:c:r:", ["endpoint=", "websocket"])
for opt, arg in opts:
\tif opt in ("-e", "--endpoint"):
\t\thost = arg
\tif opt in ("-w", "--websocket"):
\t\tuseWebsocket = True

# Init AWSIoTMQTTShadowClient
myAWSIoTMQTTShadowClient = None
if useWebsocket:
\tmyAWSIoTMQTTShadowClient = AWSIoTMQTTShadowClient("basicShadowUpdater", useWebsocket=True)
\tmyAWSIoTMQTTShadowClient.configureEndpoint(host, 443)
\tmyAWSIoTMQTTShadowClient.configureCredentials(rootCAPath)
else:
\tmyAWSIoTMQTTShadowClient = AWSIoTMQTTShadowClient("basicShadowUpdater")
\tmyAWSIoTMQTTShadowClient.configureEndpoint(host, 8883)
\tmyAWSIoTMQTTShadowClient.configureCredentials(rootCAPath, privateKeyPath, certificatePath)

myAWSIoTMQTTShadowClient.configureConnectDisconnectTimeout(10)  # 10 sec
myAWSIoTMQTTShadowClient.connect()
Bot = myAWSIoTMQTTShadowClient.createShadowHandlerWithName("Bot", True)
Bot.shadowUpdate('{"state":{"desired":{"property":1}}}', None, 5)
"""


def _branch(text: str, test: str) -> list[str]:
    """The statements of the body of the `if` whose test is `test`, as source."""
    tree = ast.parse(text)
    node = next(n for n in ast.walk(tree) if isinstance(n, ast.If) and ast.unparse(n.test) == test)
    return [ast.unparse(statement) for statement in node.body]


def test_a_websocket_branch_ends_at_its_raise(tmp_path):
    # The statements after the raise stayed, unreachable, and the X.509 rewrite then
    # turned the SigV4 `configureEndpoint(host, 443)` into `(IOTHUB_HOST, 8883)` there.
    (tmp_path / "basicShadowUpdater.py").write_text(V1_SHADOW_UPDATER, encoding="utf-8")
    outcome = patch(tmp_path, PatchOptions(hub=HUB))
    text = outcome.changed["basicShadowUpdater.py"]
    compile(text, "basicShadowUpdater.py", "exec")
    (statement,) = _branch(text, "useWebsocket")
    assert statement.startswith("raise RuntimeError('iot-bridge: IoT Hub has no SigV4")
    assert _branch(text, "useWebsocket") != _branch(V1_SHADOW_UPDATER, "useWebsocket")
    # The X.509 side is rewritten as before.
    assert "iothub_v1_shadow_client('basicShadowUpdater')" in ast.unparse(ast.parse(text))
    human = {p.line for p in outcome.report.touch_points if p.verdict == "needs_human"}
    assert human <= {15, 20, 21, 22}


# BH-iOT/Getting-started-with-AWS-IoT-Core, Python/paho_test.py (trimmed), with its
# constructor as paho-mqtt 2 (2024) wants it and as paho 2 programs on GitHub write it:
# the callback API version first, positionally, then the client id.
PAHO2 = """\
import ssl
import paho.mqtt.client as mqtt

def on_message(client, userdata, msg):
    print(msg.topic + " " + str(msg.payload))

client = mqtt.Client({args})
client.on_message = on_message
client.tls_set(ca_certs="AmazonRootCA1.pem", certfile="f28ef04987-certificate.pem.crt",
               keyfile="f28ef04987-private.pem.key", cert_reqs=ssl.CERT_REQUIRED)
client.connect("a3r2gm16zr92x7-ats.iot.us-west-2.amazonaws.com", 8883)
client.publish("test1", "Hi from Python!")
"""


# paho-mqtt 2.1's constructor signature; the stub prints what the program does.
PAHO2_STUB = """\
import json
from types import SimpleNamespace

CallbackAPIVersion = SimpleNamespace(VERSION1="VERSION1", VERSION2="VERSION2")


class Client:
    def __init__(self, callback_api_version, client_id="", *_args, **_kwargs):
        if callback_api_version not in ("VERSION1", "VERSION2"):
            raise ValueError("Unsupported callback API version " + repr(callback_api_version))
        print(json.dumps(["Client", callback_api_version, client_id]))

    def __getattr__(self, name):
        return lambda *args, **kwargs: print(json.dumps([name, *map(str, args)]))
"""


def _run_on_paho2(root: Path, program: str) -> list[list[str]]:
    package = root / "stub" / "paho" / "mqtt"
    package.mkdir(parents=True)
    for folder in (package.parent, package):
        (folder / "__init__.py").write_text("", encoding="utf-8")
    (package / "client.py").write_text(PAHO2_STUB, encoding="utf-8")
    (root / "run.py").write_text(program, encoding="utf-8")
    ran = subprocess.run(
        [sys.executable, "run.py"], cwd=root, capture_output=True, text=True, check=False,
        env={**os.environ, "PYTHONPATH": str(root / "stub")}, timeout=60,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    return [json.loads(line) for line in ran.stdout.splitlines()]


@pytest.mark.parametrize(
    ("args", "device_id"),
    [
        ('mqtt.CallbackAPIVersion.VERSION2, client_id="sensor-7"', DeviceIdSource()),
        ('mqtt.CallbackAPIVersion.VERSION2, "sensor-7"', DeviceIdSource()),
        ("mqtt.CallbackAPIVersion.VERSION2", DeviceIdSource("literal", "sensor-7")),
    ],
)
def test_a_paho2_client_keeps_its_callback_api_version(tmp_path, args, device_id):
    # The callback API version was taken for the client id: `Client(VERSION2,
    # client_id=...)` became `Client(iothub_device(...), client_id=iothub_device(...))`
    # (TypeError: multiple values), and `Client(VERSION2, "id")` lost its version.
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "main.py").write_text(PAHO2.format(args=args), encoding="utf-8")
    outcome = patch(repo, PatchOptions(hub=HUB, device_id=device_id))
    assert outcome.report.counts()["needs_human"] == 0, outcome.report.touch_points
    calls = _run_on_paho2(tmp_path, outcome.changed["main.py"])
    assert calls[0] == ["Client", "VERSION2", "sensor-7"]
    assert ["username_pw_set", f"{HUB}/sensor-7/?api-version=2021-04-12"] in calls
    assert ["connect", HUB, "8883"] in calls
    (published,) = [call for call in calls if call[0] == "publish"]
    assert published[1].startswith("devices/sensor-7/messages/events/awsTopic=test1")
