"""Gaps a third sweep over public device code found after `test_sweep_gaps.py`.

Each test holds a trimmed excerpt of the public program it came from (named in the
test) and fails without the fix it guards.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.firmware import DeviceIdSource, PatchOptions, patch, scan
from firmware_patches._c import error_count, parse_c

HUB = "myhub.azure-devices.net"
STUBS = Path(__file__).parent / "stubs"
GCC = shutil.which("gcc")
GXX = shutil.which("g++")

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


# espressif/esp-aws-iot, examples/mqtt/tls_mutual_auth/main/mqtt_demo_mutual_auth.c
# (trimmed): like AWS's coreMQTT demos it sends AWS's usage metrics as the MQTT user name.
ESP_COREMQTT_DEMO = """\
#include <stdlib.h>
#include <string.h>
#include "sdkconfig.h"
#include "core_mqtt.h"
#include "network_transport.h"

#define CLIENT_IDENTIFIER      CONFIG_MQTT_CLIENT_IDENTIFIER
#define AWS_IOT_ENDPOINT       CONFIG_MQTT_BROKER_ENDPOINT
#define AWS_MQTT_PORT          ( CONFIG_MQTT_BROKER_PORT )
#define OS_NAME                   "FreeRTOS"
#define OS_VERSION                tskKERNEL_VERSION_NUMBER
#define HARDWARE_PLATFORM_NAME    CONFIG_HARDWARE_PLATFORM_NAME
#define MQTT_LIB    "core-mqtt@" MQTT_LIBRARY_VERSION

#ifndef ROOT_CA_PEM
    extern const char root_cert_auth_start[]   asm("_binary_root_cert_auth_crt_start");
    extern const char root_cert_auth_end[]   asm("_binary_root_cert_auth_crt_end");
#endif

#define CLIENT_IDENTIFIER_LENGTH        ( ( uint16_t ) ( sizeof( CLIENT_IDENTIFIER ) - 1 ) )
#define CONNACK_RECV_TIMEOUT_MS                  ( 1000U )
#define MQTT_KEEP_ALIVE_INTERVAL_SECONDS    ( 60U )

/**
 * @brief The MQTT metrics string expected by AWS IoT.
 */
#define METRICS_STRING                      "?SDK=" OS_NAME "&Version=" OS_VERSION \\
    "&Platform=" HARDWARE_PLATFORM_NAME "&MQTTLib=" MQTT_LIB
#define METRICS_STRING_LENGTH               ( ( uint16_t ) ( sizeof( METRICS_STRING ) - 1 ) )

#ifdef CLIENT_USERNAME
    #define CLIENT_USERNAME_WITH_METRICS    CLIENT_USERNAME METRICS_STRING
#endif

int connectToServer( NetworkContext_t * pNetworkContext )
{
    pNetworkContext->pcHostname = AWS_IOT_ENDPOINT;
    pNetworkContext->pcServerRootCA = root_cert_auth_start;
    pNetworkContext->pcServerRootCASize = root_cert_auth_end - root_cert_auth_start;
    return 0;
}

int establishMqttSession( MQTTContext_t * pMqttContext,
                          bool createCleanSession,
                          bool * pSessionPresent )
{
    int returnStatus = EXIT_SUCCESS;
    MQTTStatus_t mqttStatus;
    MQTTConnectInfo_t connectInfo = { 0 };

    connectInfo.cleanSession = createCleanSession;
    connectInfo.pClientIdentifier = CLIENT_IDENTIFIER;
    connectInfo.clientIdentifierLength = CLIENT_IDENTIFIER_LENGTH;
    connectInfo.keepAliveIntervalSec = MQTT_KEEP_ALIVE_INTERVAL_SECONDS;

    #ifdef CLIENT_USERNAME
        connectInfo.pUserName = CLIENT_USERNAME_WITH_METRICS;
        connectInfo.userNameLength = strlen( CLIENT_USERNAME_WITH_METRICS );
        connectInfo.pPassword = CLIENT_PASSWORD;
        connectInfo.passwordLength = strlen( CLIENT_PASSWORD );
    #else
        connectInfo.pUserName = METRICS_STRING;
        connectInfo.userNameLength = METRICS_STRING_LENGTH;
        /* Password for authentication is not used. */
        connectInfo.pPassword = NULL;
        connectInfo.passwordLength = 0U;
    #endif /* ifdef CLIENT_USERNAME */

    mqttStatus = MQTT_Connect( pMqttContext, &connectInfo, NULL, CONNACK_RECV_TIMEOUT_MS,
                               pSessionPresent );
    if( mqttStatus != MQTTSuccess )
    {
        returnStatus = EXIT_FAILURE;
    }
    return returnStatus;
}
"""
ESP_SDKCONFIG = """\
CONFIG_MQTT_CLIENT_IDENTIFIER="testClient"
CONFIG_MQTT_BROKER_ENDPOINT="a1b2c3d4e5f6g7-ats.iot.us-east-1.amazonaws.com"
CONFIG_MQTT_BROKER_PORT=8883
CONFIG_HARDWARE_PLATFORM_NAME="ESP32"
"""


def _esp_demo(root: Path) -> Path:
    (root / "main").mkdir(parents=True)
    (root / "main" / "mqtt_demo_mutual_auth.c").write_text(ESP_COREMQTT_DEMO, encoding="utf-8")
    (root / "sdkconfig").write_text(ESP_SDKCONFIG, encoding="utf-8")
    return root / "main" / "mqtt_demo_mutual_auth.c"


def test_the_coremqtt_metrics_user_name_is_a_touch_point(tmp_path):
    # The user name line was no touch point at all, and the report said "IoT Hub's user
    # name is added" with nothing needing a human while the metrics string stayed.
    _esp_demo(tmp_path)
    points = {(p.line, p.kind): p for p in scan(tmp_path).touch_points}
    assert points[(62, "username")].verdict == "rewritten"
    # The username/password branch (#ifdef CLIENT_USERNAME) is the program's own auth.
    assert points[(57, "username_password")].verdict == "needs_human"


@pytest.mark.skipif(GCC is None, reason="gcc is not installed")
def test_the_coremqtt_metrics_user_name_becomes_iothubs(tmp_path):
    # The demo kept sending "?SDK=FreeRTOS&Version=..." as its user name: IoT Hub refuses
    # that CONNECT. It now sends {hub}/{device}/?api-version=...
    repo = tmp_path / "repo"
    source = _esp_demo(repo)
    patch(repo, PatchOptions(hub=HUB), apply=True)
    assert error_count(parse_c(source.read_bytes())) == 0
    lines = (repo / "sdkconfig").read_text().splitlines()
    (tmp_path / "sdkconfig.h").write_text(
        "".join(f"#define {k} {v}\n" for k, v in (x.split("=", 1) for x in lines))
    )
    probe = tmp_path / "probe.c"
    probe.write_text(
        '#define tskKERNEL_VERSION_NUMBER "V10.4.3"\n#define MQTT_LIBRARY_VERSION "v2.1.1"\n'
        f'#include "{source}"\n#include <stdio.h>\n'
        'const char root_cert_auth_start[] __asm__("_binary_root_cert_auth_crt_start") = "aws";\n'
        'const char root_cert_auth_end[] __asm__("_binary_root_cert_auth_crt_end") = "";\n'
        "MQTTStatus_t MQTT_Connect(MQTTContext_t *c, const MQTTConnectInfo_t *i,"
        " const MQTTPublishInfo_t *w, uint32_t t, bool *s) {\n"
        '  printf("%.*s|%.*s|%u\\n", i->clientIdentifierLength, i->pClientIdentifier,'
        " i->userNameLength, i->pUserName, (unsigned)i->keepAliveIntervalSec);\n"
        "  (void)c; (void)w; (void)t; (void)s; return MQTTSuccess;\n}\n"
        "int main(void) {\n"
        "  NetworkContext_t network; MQTTContext_t context; bool present;\n"
        "  connectToServer(&network);\n"
        '  printf("%s\\n", network.pcHostname);\n'
        "  return establishMqttSession(&context, true, &present);\n}\n"
    )
    binary = tmp_path / "probe"
    flags = ["-std=gnu11", "-Wall", "-Werror", "-I", str(STUBS), "-I", str(tmp_path)]
    subprocess.run([GCC, *flags, "-o", str(binary), str(probe)], check=True)
    out = subprocess.run([str(binary)], capture_output=True, text=True, check=True).stdout
    host, connect = out.splitlines()
    assert host == HUB
    assert connect == f"testClient|{HUB}/testClient/?api-version=2021-04-12|60"
    assert patch(repo, PatchOptions(hub=HUB)).changed == {}  # patching twice: no change


def test_a_coremqtt_program_with_its_own_user_name_is_refused(tmp_path):
    # Custom authorizer / username-password programs: the rewrite used to say "IoT Hub's
    # user name is added" while leaving the program's own user name in place.
    source = _esp_demo(tmp_path)
    text = ESP_COREMQTT_DEMO.replace(
        "connectInfo.pUserName = METRICS_STRING;", "connectInfo.pUserName = MY_USER;"
    )
    source.write_text(text, encoding="utf-8")
    report = scan(tmp_path)
    (user,) = [p for p in report.touch_points if p.line == 62]
    assert (user.kind, user.verdict) == ("username_password", "needs_human")
    source_points = report.files[0].touch_points
    assert all(p.verdict == "needs_human" for p in source_points)
    client_id = next(p for p in source_points if p.kind == "client_id")
    assert "own MQTT user name (CLIENT_USERNAME_WITH_METRICS, MY_USER, " in client_id.reason


# arduino/ArduinoCloudProviderExamples, examples/AWS IoT/AWS_IoT_WiFi/AWS_IoT_WiFi.ino
# (trimmed): Arduino's own AWS IoT sketch leaves setId() commented out, so the library
# sends a millis()-based id.
AWS_IOT_WIFI = """\
#include <ArduinoBearSSL.h>
#include <ArduinoECCX08.h>
#include <ArduinoMqttClient.h>
#include <WiFiNINA.h> // change to #include <WiFi101.h> for MKR1000

#include "arduino_secrets.h"

const char broker[]      = SECRET_BROKER;
const char* certificate  = SECRET_CERTIFICATE;

WiFiClient    wifiClient;            // Used for the TCP socket connection
BearSSLClient sslClient(wifiClient); // Used for SSL/TLS connection, integrates with ECC508
MqttClient    mqttClient(sslClient);

void onMessageReceived(int messageSize) {}

void setup() {
  ECCX08.begin();
  sslClient.setEccSlot(0, certificate);

  // Optional, set the client id used for MQTT,
  // each device that is connected to the broker
  // must have a unique client id. The MQTTClient will generate
  // a client id for you based on the millis() value if not set
  //
  // mqttClient.setId("clientId");

  mqttClient.onMessage(onMessageReceived);
}
"""
AWS_IOT_WIFI_MQTT = """\
void connectMQTT() {
  while (!mqttClient.connect(broker, 8883)) {
    // failed, retry
    delay(5000);
  }

  // subscribe to a topic
  mqttClient.subscribe("arduino/incoming");
}

void publishMessage() {
  // send message, the Print interface can be used to set the message contents
  mqttClient.beginMessage("arduino/outgoing");
  mqttClient.print("hello ");
  mqttClient.endMessage();
}

void loop() {
  if (!mqttClient.connected()) {
    connectMQTT();
  }
  mqttClient.poll();
  publishMessage();
}
"""
AWS_IOT_WIFI_SECRETS = """\
#define SECRET_BROKER "xxxxxxxxxxxxxx.iot.xx-xxxx-x.amazonaws.com"
const char SECRET_CERTIFICATE[] = R"(
-----BEGIN CERTIFICATE-----
-----END CERTIFICATE-----
)";
"""


def _aws_iot_wifi(root: Path, *, tabs: bool, set_id: bool = False) -> Path:
    sketch = root / "AWS_IoT_WiFi"
    sketch.mkdir(parents=True)
    main = AWS_IOT_WIFI
    if set_id:
        main = main.replace('// mqttClient.setId("clientId");', 'mqttClient.setId("porch-7");')
    if tabs:
        (sketch / "AWS_IoT_WiFi.ino").write_text(main, encoding="utf-8")
        (sketch / "mqtt.ino").write_text(AWS_IOT_WIFI_MQTT, encoding="utf-8")
    else:
        (sketch / "AWS_IoT_WiFi.ino").write_text(main + AWS_IOT_WIFI_MQTT, encoding="utf-8")
    (sketch / "arduino_secrets.h").write_text(AWS_IOT_WIFI_SECRETS, encoding="utf-8")
    return sketch


def _run_sketch(tmp_path: Path, sketch: Path) -> list[str]:
    """Build the sketch as the Arduino IDE does (main tab, then the others, prototypes
    first) against the stub headers, run it, and return what the stub client printed."""
    tabs = sorted(p.name for p in sketch.glob("*.ino") if p.stem != sketch.name)
    probe = tmp_path / "probe.cpp"
    probe.write_text(
        "void connectMQTT();\nvoid publishMessage();\n"
        + "".join(f'#include "{name}"\n' for name in [f"{sketch.name}.ino", *tabs])
        + "int main() { setup(); loop(); return 0; }\n"
    )
    binary = tmp_path / "probe"
    flags = ["-std=c++17", "-Wall", "-Werror", "-Wno-unused-variable", "-Wno-unused-parameter"]
    includes = ["-I", str(STUBS / "arduino"), "-I", str(sketch)]
    subprocess.run([GXX, *flags, *includes, "-o", str(binary), str(probe)], check=True)
    ran = subprocess.run([str(binary)], capture_output=True, text=True, check=True)
    return ran.stdout.splitlines()


def test_arduino_aws_iot_wifi_without_set_id_needs_a_device_id(tmp_path):
    _aws_iot_wifi(tmp_path, tabs=False)
    report = scan(tmp_path)
    topics = [p for p in report.touch_points if p.kind == "topic"]
    assert topics
    assert all("--device-id-from literal:ID" in p.reason for p in topics)


@pytest.mark.skipif(GXX is None, reason="g++ is not installed")
@pytest.mark.parametrize("tabs", [False, True])
def test_arduino_aws_iot_wifi_takes_its_device_id_from_the_option(tmp_path, tabs):
    # It was refused ("no setId() call") even with --device-id-from literal:ID.
    sketch = _aws_iot_wifi(tmp_path / "repo", tabs=tabs)
    options = PatchOptions(hub=HUB, device_id=DeviceIdSource("literal", "porch-7"))
    outcome = patch(tmp_path / "repo", options, apply=True)
    # Only BearSSLClient's trust anchors are left to a human (test_sweep4.py).
    human = [p for p in outcome.report.touch_points if p.verdict == "needs_human"]
    assert [(p.kind, p.line) for p in human] == [("root_ca", 12)], human
    user = f"{HUB}/porch-7/?api-version=2021-04-12"
    events = (
        "devices/porch-7/messages/events/"
        "awsTopic=arduino%2Foutgoing&awsTopic1=arduino&awsTopic2=outgoing"
    )
    assert _run_sketch(tmp_path, sketch) == [
        f"connect {HUB} 8883 id=porch-7 user={user} password=(none)",
        "subscribe devices/porch-7/messages/devicebound/#",
        f"publish {events} hello ",
    ]
    assert patch(tmp_path / "repo", options).changed == {}  # patching twice: no change


@pytest.mark.skipif(GXX is None, reason="g++ is not installed")
def test_arduinomqttclient_calls_in_another_tab_are_rewritten(tmp_path):
    # The sketch split in tabs (the client and setId() in the main tab, connect, subscribe
    # and beginMessage in mqtt.ino): mqtt.ino's topics were "found, but the recipe had
    # nothing it could change here", and the sketch kept publishing to AWS topics.
    sketch = _aws_iot_wifi(tmp_path / "repo", tabs=True, set_id=True)
    outcome = patch(tmp_path / "repo", PatchOptions(hub=HUB), apply=True)
    # Only BearSSLClient's trust anchors are left to a human (test_sweep4.py).
    human = [p for p in outcome.report.touch_points if p.verdict == "needs_human"]
    assert [(p.kind, p.line) for p in human] == [("root_ca", 12)], human
    assert {p.file for p in outcome.report.touch_points if p.kind == "topic"} == {
        "AWS_IoT_WiFi/mqtt.ino"
    }
    user = f"{HUB}/porch-7/?api-version=2021-04-12"
    calls = _run_sketch(tmp_path, sketch)
    assert calls[0] == f"connect {HUB} 8883 id=porch-7 user={user} password=(none)"
    assert calls[1] == "subscribe devices/porch-7/messages/devicebound/#"
    assert calls[2].startswith("publish devices/porch-7/messages/events/awsTopic=arduino%2F")
