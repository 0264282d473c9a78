"""Gaps a fourth sweep over public device code found after `test_sweep3.py`.

Each test holds a trimmed excerpt of the public program it came from (named in the
test) and fails without the fix it guards.
"""

from __future__ import annotations

from pathlib import Path

from bridge.firmware import PatchOptions, patch, scan

HUB = "myhub.azure-devices.net"


def _points(root: Path, name: str) -> list[tuple[int, str, str]]:
    report = scan(root)
    return [(p.line, p.kind, p.verdict) for p in report.touch_points if p.file == name]


# aws/aws-iot-device-sdk-python, samples/basicPubSub/basicPubSub.py (trimmed): the usage
# and help blocks are triple-quoted strings naming the certificate option.
V1_BASIC_PUBSUB = '''\
from AWSIoTPythonSDK.MQTTLib import AWSIoTMQTTClient
import sys
import getopt

# Usage
usageInfo = """Usage:

Use certificate based mutual authentication:
python basicPubSub.py -e <endpoint> -r <rootCAFilePath> -c <certFilePath> -k <privateKeyFilePath>

Use MQTT over WebSocket:
python basicPubSub.py -e <endpoint> -r <rootCAFilePath> -w
"""
# Help info
helpInfo = """-e, --endpoint
\tYour AWS IoT custom endpoint
-c, --cert
\tCertificate file path
"""

host = ""
certificatePath = ""
privateKeyPath = ""
opts, args = getopt.getopt(sys.argv[1:], "hwe:k:c:r:", ["help", "endpoint=", "key=", "cert="])
for opt, arg in opts:
\tif opt in ("-e", "--endpoint"):
\t\thost = arg
\tif opt in ("-c", "--cert"):
\t\tcertificatePath = arg
\tif opt in ("-k", "--key"):
\t\tprivateKeyPath = arg

myAWSIoTMQTTClient = AWSIoTMQTTClient("basicPubSub")
myAWSIoTMQTTClient.configureEndpoint(host, 8883)
myAWSIoTMQTTClient.configureCredentials("root.pem", privateKeyPath, certificatePath)
myAWSIoTMQTTClient.connect()
myAWSIoTMQTTClient.publish("sdk/test/Python", "hi", 1)
'''

# A user's copy of it, as on GitHub (myFirstIotPublish.py): the usage line is a comment.
COMMENTED_USAGE = """\
#format
#python myFirstIotPublish.py -e <endpoint> -r <rootCAFilePath> -c <certFilePath> -k <key>
from AWSIoTPythonSDK.MQTTLib import AWSIoTMQTTClient

client = AWSIoTMQTTClient("basicPubSub")
client.configureEndpoint("abc123-ats.iot.us-east-1.amazonaws.com", 8883)
client.configureCredentials("AmazonRootCA1.pem", "private.pem.key", "certificate.pem.crt")
client.connect()
"""


def _line(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


def test_a_certificate_option_in_usage_text_is_not_a_touch_point(tmp_path):
    (tmp_path / "basicPubSub.py").write_text(V1_BASIC_PUBSUB, encoding="utf-8")
    points = _points(tmp_path, "basicPubSub.py")
    certificates = [line for line, kind, _ in points if kind == "certificate"]
    assert certificates == [_line(V1_BASIC_PUBSUB, "configureCredentials(")]


def test_root_ca_and_certificate_in_a_comment_are_not_touch_points(tmp_path):
    (tmp_path / "myFirstIotPublish.py").write_text(COMMENTED_USAGE, encoding="utf-8")
    points = _points(tmp_path, "myFirstIotPublish.py")
    assert {line for line, kind, _ in points if kind in {"certificate", "root_ca"}} == {
        _line(COMMENTED_USAGE, "configureCredentials(")
    }
    # the program itself is still rewritten
    text = patch(tmp_path, PatchOptions(hub=HUB)).changed["myFirstIotPublish.py"]
    compile(text, "myFirstIotPublish.py", "exec")
    assert 'amazonaws.com", 8883' not in text


# arduino/ArduinoCloudProviderExamples, examples/AWS IoT/AWS_IoT_WiFi/AWS_IoT_WiFi.ino
# (trimmed): BearSSLClient is built on the library's own trust-anchor table, so there is
# no PEM for the patch to swap for IoT Hub's roots.
BEARSSL_SKETCH = """\
#include <ArduinoBearSSL.h>
#include <ArduinoECCX08.h>
#include <ArduinoMqttClient.h>
#include <WiFiNINA.h>

const char broker[] = "xxxxxxxxxxxxxx-ats.iot.us-east-1.amazonaws.com";
const char* certificate = SECRET_CERTIFICATE;

WiFiClient    wifiClient;            // Used for the TCP socket connection
BearSSLClient sslClient(wifiClient); // Used for SSL/TLS connection, integrates with ECC508
MqttClient    mqttClient(sslClient);

void setup() {
  ECCX08.begin();
  sslClient.setEccSlot(0, certificate);
  mqttClient.setId("porch-7");
  while (!mqttClient.connect(broker, 8883)) {
    delay(5000);
  }
}
"""


def test_a_bearssl_client_says_what_a_human_must_do_for_iothubs_roots(tmp_path):
    sketch = tmp_path / "AWS_IoT_WiFi"
    sketch.mkdir()
    (sketch / "AWS_IoT_WiFi.ino").write_text(BEARSSL_SKETCH, encoding="utf-8")
    report = scan(tmp_path)
    (trust,) = [p for p in report.touch_points if p.kind == "root_ca"]
    assert trust.line == _line(BEARSSL_SKETCH, "BearSSLClient sslClient")
    assert trust.verdict == "needs_human"
    for needed in ("DigiCert Global Root G2", "Microsoft RSA Root CA 2017", "brssl ta"):
        assert needed in trust.reason
    # the rest of the sketch is still rewritten
    text = patch(tmp_path, PatchOptions(hub=HUB)).changed["AWS_IoT_WiFi/AWS_IoT_WiFi.ino"]
    assert "amazonaws.com" not in text
    assert "setUsernamePassword(IOTHUB_USER" in text
