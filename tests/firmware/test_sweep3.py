"""Gaps a third sweep over public device code found after `test_sweep_gaps.py`.

Each test holds a trimmed excerpt of the public program it came from (named in the
test) and fails without the fix it guards.
"""

from __future__ import annotations

import ast

from bridge.firmware import PatchOptions, patch

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
