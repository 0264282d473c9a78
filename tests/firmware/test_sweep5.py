"""Gaps a fifth sweep over public device code found: the long tail of how community
sketches, scripts and programs are written.

Each test is a trimmed excerpt of the public program named above it, and fails without
the fix it guards.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote

import pytest

from bridge.firmware import DeviceIdSource, PatchOptions, patch, scan
from bridge.mapping.topics import topic_properties
from tests.firmware.conftest import patch_repo, provision, run_program, telemetry

HUB = "myhub.azure-devices.net"
STUBS = Path(__file__).parent / "stubs" / "arduino"
GXX = shutil.which("g++")
needs_gxx = pytest.mark.skipif(GXX is None, reason="g++ is not installed")


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def _run_sketch(
    tmp_path: Path, folder: Path, source: str, extra: list[str] | None = None
) -> list[str]:
    """Compile the patched sketch (`source` includes its tabs, as the IDE concatenates
    them, and drives it) with g++ against the stub libraries, and run it."""
    probe = tmp_path / "probe.cpp"
    probe.write_text(source, encoding="utf-8")
    binary = tmp_path / "probe"
    flags = ["-std=c++17", "-Wall", "-Werror", "-Wno-unused-variable", "-I", str(STUBS)]
    subprocess.run(
        [GXX or "g++", *flags, *(extra or []), "-I", str(folder), "-o", str(binary), str(probe)],
        check=True,
    )
    ran = subprocess.run([str(binary)], capture_output=True, text=True, check=True)
    return ran.stdout.splitlines()


def _bag(topic: str) -> tuple[str, dict[str, str]]:
    prefix, _, bag = topic.partition("/messages/events/")
    pairs = [pair.split("=", 1) for pair in bag.split("&")]
    return prefix, {key: unquote(value) for key, value in pairs}


def _line(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


def _verdicts(root: Path) -> dict[tuple[str, int], tuple[str, str]]:
    return {
        (f.file, p.line): (p.verdict, p.reason)
        for f in scan(root, PatchOptions(hub=HUB)).files
        for p in f.touch_points
    }


# An ESP8266 MQ-2 carbon-monitor sketch on GitHub (found by code search for
# `BearSSL::X509List cert(cacert)`; the index does not name its repository), in the shape
# of the many "ESP8266 AWS IoT" tutorials: the thing name and the topic are `const char`
# arrays, not macros, and the certificates come from a header.
CARBON = """\
#include <ESP8266WiFi.h>
#include <WiFiClientSecure.h>
#include <PubSubClient.h>
#include <ArduinoJson.h>
#include "env.h"

bool alertActive = false;
const char THINGNAME[] = "jerinEsp8266";
const char MQTT_HOST[] = "a1gdcuo66d6mes-ats.iot.ap-south-1.amazonaws.com";
const char AWS_IOT_PUBLISH_TOPIC[] = "jerin/esp/pub";

BearSSL::WiFiClientSecure net;
BearSSL::X509List cert(cacert);
BearSSL::X509List client_crt(client_cert);
BearSSL::PrivateKey key(privkey);
PubSubClient client(net);

void connectAWS() {
  net.setTrustAnchors(&cert);
  net.setClientRSACert(&client_crt, &key);
  client.setServer(MQTT_HOST, 8883);
  while (!client.connect(THINGNAME)) {
    delay(1000);
  }
}

void publishMessage(int carbonLevel) {
  StaticJsonDocument<200> doc;
  doc["carbon_level"] = carbonLevel;
  char jsonBuffer[512];
  serializeJson(doc, jsonBuffer);
  client.publish(AWS_IOT_PUBLISH_TOPIC, jsonBuffer);
}

void setup() {
  connectAWS();
}

void loop() {
  client.loop();
  publishMessage(1510);
}
"""

CARBON_ENV = """\
#include <pgmspace.h>

static const char cacert[] PROGMEM = R"EOF(
-----BEGIN CERTIFICATE-----
MIIDQTCCAimgAwIBAgITBmyfz5m/jAo54vB4ikPmljZbyjANBgkqhkiG9w0BAQsF
-----END CERTIFICATE-----
)EOF";

static const char client_cert[] PROGMEM = "device certificate";
static const char privkey[] PROGMEM = "device key";
"""

SETUP_LOOP = """\
int main() {
  setup();
  loop();
  std::printf("trust %s\\n", BearSSL::bearssl_stub_trust && std::strstr(
      BearSSL::bearssl_stub_trust->pem(), "MIIDjjCCAnagAwIBAgIQAzrx5qcRqaC7KGSxHQn65T")
      ? "iothub" : "other");
  return 0;
}
"""


@needs_gxx
def test_a_thing_name_and_topic_in_const_char_arrays_run_on_iothub(tmp_path):
    # `"devices/" THINGNAME "/..."` spliced a const char array as if it were a macro:
    # the sketch was refused as a whole ("the rewrite ... would not parse").
    _write(tmp_path, {"carbon/carbon.ino": CARBON, "carbon/env.h": CARBON_ENV})
    outcome = patch(tmp_path, PatchOptions(hub=HUB), apply=True)
    assert "carbon/carbon.ino" in outcome.changed
    calls = _run_sketch(tmp_path, tmp_path / "carbon", '#include "carbon.ino"\n' + SETUP_LOOP)
    user = f"{HUB}/jerinEsp8266/?api-version=2021-04-12"
    assert calls[:3] == [
        f"setServer {HUB} 8883",
        "setBufferSize 1024",
        f"connect jerinEsp8266 {user} (none)",
    ]
    verb, topic, payload = calls[3].split(" ")
    assert (verb, payload) == ("publish", '{"celsius":1510.0}')
    assert _bag(topic) == ("devices/jerinEsp8266", topic_properties("jerin/esp/pub"))
    assert calls[-1] == "trust iothub"


# alex22022005/ESP8266-AWS-IoT-Core-MQTT-Publisher-BearSSL-, aws_testing.ino and ca.h
# (trimmed): a literal client id, the topic in a `const char*`, and the trust anchors
# built in the call from Amazon Root CA 1 as a DER array.
ALEX = """\
#include <ESP8266WiFi.h>
#include <PubSubClient.h>
#include <WiFiClientSecureBearSSL.h>

#include "ca.h"    // Amazon Root CA

const char* awsEndpoint = "a1p29l9k7yb1mr-ats.iot.eu-north-1.amazonaws.com";
const int awsPort = 8883;

// MQTT Topic
const char* topic = "myDevice/sensorData";

BearSSL::WiFiClientSecure wifiClient;
PubSubClient client(wifiClient);

void connectAWS() {
    wifiClient.setBufferSizes(512, 512);
    wifiClient.setTrustAnchors(new BearSSL::X509List(ca_der, ca_der_len));
    client.setServer(awsEndpoint, awsPort);
    while (!client.connected()) {
        if (client.connect("NodeMCUClient")) {
            Serial.println("Connected to AWS IoT Core!");
        } else {
            delay(5000);
        }
    }
}

void setup() {
    connectAWS();
}

void loop() {
    client.loop();
    String message = "{\\"temperature\\": 25.5}";
    client.publish(topic, message.c_str());
}
"""

ALEX_CA = """\
#ifndef CA_H
#define CA_H
const unsigned char ca_der[] PROGMEM = {0x30, 0x82, 0x03, 0x41};
const unsigned int ca_der_len = sizeof(ca_der);
#endif
"""


@needs_gxx
def test_a_literal_client_id_and_trust_anchors_built_in_the_call_run_on_iothub(tmp_path):
    # `connect("NodeMCUClient")` was refused ("without a client id macro"), and the
    # `new X509List(ca_der, ca_der_len)` trust anchors were reported rewritten while the
    # patch left Amazon's root in place.
    _write(tmp_path, {"aws_testing/aws_testing.ino": ALEX, "aws_testing/ca.h": ALEX_CA})
    verdicts = _verdicts(tmp_path)
    assert (
        verdicts[("aws_testing/aws_testing.ino", _line(ALEX, "setTrustAnchors"))][0] == "rewritten"
    )
    outcome = patch(tmp_path, PatchOptions(hub=HUB), apply=True)
    assert (
        "new BearSSL::X509List(IOTHUB_ROOT_CAS)" in outcome.changed["aws_testing/aws_testing.ino"]
    )
    calls = _run_sketch(
        tmp_path, tmp_path / "aws_testing", '#include "aws_testing.ino"\n' + SETUP_LOOP
    )
    user = f"{HUB}/NodeMCUClient/?api-version=2021-04-12"
    assert f"connect NodeMCUClient {user} (none)" in calls
    publish = next(line for line in calls if line.startswith("publish "))
    _, topic, payload = publish.split(" ", 2)
    assert payload == '{"temperature": 25.5}'
    assert _bag(topic) == ("devices/NodeMCUClient", topic_properties("myDevice/sensorData"))
    assert calls[-1] == "trust iothub"


# aws-samples/lets-build-on-aws-iot, module-3/module-3.ino and module-3/AWS.ino
# (trimmed): the thing name is a macro of the main tab, and AWS.ino subscribes to a
# literal topic, as most ESP32 MQTTClient sketches do for their command topic.
LETSBUILD_MAIN = """\
#include <WiFiClientSecure.h>
#include <MQTTClient.h>

#include "secrets.h"
#include <ArduinoJson.h>

// The MQTT topics that this device should publish/subscribe
#define AWS_IOT_PUBLISH_SENSORS   "foodcontrol/sensors"

WiFiClientSecure net = WiFiClientSecure();
MQTTClient client = MQTTClient(256);

#define THINGNAME "letsbuild01"

void setup() {
  connectAWS();
}

void loop() {
  client.loop();
  StaticJsonDocument<200> doc;
  doc["temperature"] = 21.5;
  char jsonBuffer[128];
  serializeJson(doc, jsonBuffer);
  client.publish(AWS_IOT_PUBLISH_SENSORS, jsonBuffer);
  client.publish("callwaiter/status", "{\\"ok\\":1}");
}
"""

LETSBUILD_AWS = """\
void connectAWS()
{
  // Configure WiFiClientSecure to use the AWS IoT device credentials
  net.setCACert(AWS_CERT_CA);
  net.setCertificate(AWS_CERT_CRT);
  net.setPrivateKey(AWS_CERT_PRIVATE);

  // Connect to the MQTT broker on the AWS endpoint we defined earlier
  client.begin(AWS_IOT_ENDPOINT, 8883, net);
  client.onMessage(messageHandler);

  while (!client.connect(THINGNAME)) {
    delay(100);
  }
  // Subscribe to a topic
  client.subscribe("control/lamp");
}

void messageHandler(String &topic, String &payload) {
  std::printf("handled %s\\n", payload.c_str());
}
"""

LETSBUILD_SECRETS = """\
const char AWS_IOT_ENDPOINT[] = "a2xyzexample-ats.iot.eu-west-1.amazonaws.com";
static const char AWS_CERT_CA[] PROGMEM = "Amazon Root CA 1";
static const char AWS_CERT_CRT[] PROGMEM = "device certificate";
static const char AWS_CERT_PRIVATE[] PROGMEM = "device key";
"""


@needs_gxx
def test_a_literal_topic_beside_a_thing_name_macro_is_rewritten(tmp_path):
    # `client.subscribe("control/lamp")` became `subscribe("devices/" THINGNAME "/...")`,
    # which the grammar rejects in a call: both tabs were refused ("would not parse")
    # and the sketch kept talking to AWS.
    _write(
        tmp_path,
        {
            "module-3/module-3.ino": LETSBUILD_MAIN,
            "module-3/AWS.ino": LETSBUILD_AWS,
            "module-3/secrets.h": LETSBUILD_SECRETS,
        },
    )
    verdicts = _verdicts(tmp_path)
    assert verdicts[("module-3/AWS.ino", _line(LETSBUILD_AWS, "subscribe("))][0] == "rewritten"
    assert (
        verdicts[("module-3/module-3.ino", _line(LETSBUILD_MAIN, '"callwaiter/status"'))][0]
        == "rewritten"
    )
    outcome = patch(tmp_path, PatchOptions(hub=HUB), apply=True)
    assert {"module-3/AWS.ino", "module-3/module-3.ino", "module-3/secrets.h"} <= set(
        outcome.changed
    )
    # What the Arduino IDE builds: prototypes, the main tab, then the others.
    probe = (
        "#include <Arduino.h>\nvoid connectAWS();\n"
        "void messageHandler(String &topic, String &payload);\n"
        '#include "module-3.ino"\n#include "AWS.ino"\n'
        'int main() { setup(); loop(); stub_deliver("{}"); return 0; }\n'
    )
    calls = _run_sketch(tmp_path, tmp_path / "module-3", probe)
    user = f"{HUB}/letsbuild01/?api-version=2021-04-12"
    assert calls[:4] == [
        "buffer 1024",
        f"begin {HUB} 8883",
        f"connect letsbuild01 {user} (none)",
        "subscribe devices/letsbuild01/messages/devicebound/#",
    ]
    publishes = [line.split(" ") for line in calls if line.startswith("publish")]
    assert [_bag(topic) for _, topic, _ in publishes] == [
        ("devices/letsbuild01", topic_properties("foodcontrol/sensors")),
        ("devices/letsbuild01", topic_properties("callwaiter/status")),
    ]
    assert calls[-1] == "handled {}"
    # Patching twice equals patching once.
    assert patch(tmp_path, PatchOptions(hub=HUB)).changed == {}


# debsahu/ESP-MQTT-AWS-IoT-Core, Arduino/PubSubClient/PubSubClient.ino and secrets.h
# (trimmed): the template many ESP8266/ESP32 projects start from. Its topics are
# `const char` arrays spliced from THINGNAME, and it publishes its shadow document,
# built with ArduinoJson, to `$aws/things/THINGNAME/shadow/update`.
DEBSAHU = """\
#include <ESP8266WiFi.h>
#include <WiFiClientSecure.h>
#include <PubSubClient.h>
#include <ArduinoJson.h>

#include "secrets.h"

const int MQTT_PORT = 8883;
const char MQTT_SUB_TOPIC[] = "$aws/things/" THINGNAME "/shadow/update";
const char MQTT_PUB_TOPIC[] = "$aws/things/" THINGNAME "/shadow/update";

BearSSL::WiFiClientSecure net;
BearSSL::X509List cert(cacert);
BearSSL::X509List client_crt(client_cert);
BearSSL::PrivateKey key(privkey);
PubSubClient client(net);

void connectToMqtt()
{
  while (!client.connected())
  {
    if (client.connect(THINGNAME))
    {
      client.subscribe(MQTT_SUB_TOPIC);
    }
  }
}

void sendData(void)
{
  StaticJsonDocument<200> doc;
  doc["value"] = 42;
  char shadow[128];
  serializeJson(doc, shadow);
  client.publish(MQTT_PUB_TOPIC, shadow);
}

void setup()
{
  net.setTrustAnchors(&cert);
  net.setClientRSACert(&client_crt, &key);
  client.setServer(MQTT_HOST, MQTT_PORT);
  connectToMqtt();
}

void loop()
{
  client.loop();
  sendData();
}
"""

DEBSAHU_SECRETS = """\
#define THINGNAME "WelcomeTest"

const char MQTT_HOST[] = "xxxxxxxxx-ats.iot.us-east-1.amazonaws.com";

static const char cacert[] PROGMEM = "Amazon Root CA 1";
static const char client_cert[] PROGMEM = "device certificate";
static const char privkey[] PROGMEM = "device key";
"""


@needs_gxx
def test_a_shadow_document_publish_is_left_to_a_human_and_the_rest_runs_on_iothub(tmp_path):
    # Refused as a whole ("would not parse": the topic arrays were spliced as macros);
    # the shadow publish, which the patch leaves on $aws/..., was also reported
    # "rewritten" although IoT Hub closes the connection of a device publishing there.
    _write(
        tmp_path,
        {"PubSubClient/PubSubClient.ino": DEBSAHU, "PubSubClient/secrets.h": DEBSAHU_SECRETS},
    )
    verdicts = _verdicts(tmp_path)
    verdict, reason = verdicts[
        ("PubSubClient/PubSubClient.ino", _line(DEBSAHU, "publish(MQTT_PUB_TOPIC"))
    ]
    assert verdict == "needs_human"
    assert "$iothub/twin/PATCH/properties/reported/" in reason
    assert (
        verdicts[("PubSubClient/PubSubClient.ino", _line(DEBSAHU, "subscribe(MQTT_SUB_TOPIC"))][0]
        == "rewritten"
    )
    patch(tmp_path, PatchOptions(hub=HUB), apply=True)
    calls = _run_sketch(
        tmp_path, tmp_path / "PubSubClient", '#include "PubSubClient.ino"\n' + SETUP_LOOP
    )
    user = f"{HUB}/WelcomeTest/?api-version=2021-04-12"
    assert calls[:4] == [
        f"setServer {HUB} 8883",
        "setBufferSize 1024",
        f"connect WelcomeTest {user} (none)",
        "subscribe $iothub/twin/PATCH/properties/desired/#",
    ]
    assert calls[-1] == "trust iothub"


# Savjee/home-energy-monitor, src-esp32/src/functions/AWSConnector.cpp (an early version,
# trimmed): the MQTTClient is a member of a class, and the certificates are embedded
# with PlatformIO's board_build.embed_txtfiles.
SAVJEE = """\
#ifndef CLASS_AWSCONNECTOR
#define CLASS_AWSCONNECTOR

#include <Arduino.h>
#include <WiFiClientSecure.h>
#include <MQTTClient.h>

extern const uint8_t aws_root_ca_pem_start[] asm("_binary_certificates_amazonrootca1_pem_start");

class AWSConnector
{
  public:
    WiFiClientSecure net = WiFiClientSecure();
    MQTTClient client = MQTTClient(512);

    void setup(){
      connect();
    }

    void sendMessage(String msg){
      client.publish("home-energy-monitor/readings", msg);
    }

  private:
    void connect(){
      net.setCACert((const char *) aws_root_ca_pem_start);
      client.begin("a2xyzexample-ats.iot.eu-west-1.amazonaws.com", 8883, net);
      while (!client.connect("xd-home-energy-monitor-1")) {
        delay(100);
      }
    }
};

#endif
"""


@needs_gxx
def test_an_mqtt_client_held_by_a_class_is_rewritten(tmp_path):
    # The member client was not seen: the report said everything was rewritten while
    # connect() sent no user name and the publish stayed on the AWS topic.
    _write(tmp_path, {"src/functions/AWSConnector.cpp": SAVJEE})
    outcome = patch(tmp_path, PatchOptions(hub=HUB), apply=True)
    assert "src/functions/AWSConnector.cpp" in outcome.changed
    probe = (
        'const unsigned char aws_root_ca_pem_start[] = "Amazon Root CA 1";\n'
        '#define asm(label)\n#include "AWSConnector.cpp"\n#undef asm\n'
        "int main() {\n  AWSConnector aws;\n  aws.setup();\n"
        '  aws.sendMessage("{\\"watts\\":512}");\n  return 0;\n}\n'
    )
    calls = _run_sketch(tmp_path, tmp_path / "src" / "functions", probe)
    user = f"{HUB}/xd-home-energy-monitor-1/?api-version=2021-04-12"
    assert calls[:3] == [
        "buffer 1024",
        f"begin {HUB} 8883",
        f"connect xd-home-energy-monitor-1 {user} (none)",
    ]
    verb, topic, payload = calls[3].split(" ")
    assert (verb, payload) == ("publish", '{"watts":512}')
    assert _bag(topic) == (
        "devices/xd-home-energy-monitor-1",
        topic_properties("home-energy-monitor/readings"),
    )


# Savjee/home-energy-monitor, src-esp32/src/tasks/mqtt-aws.h (trimmed): connect() passes
# a user name and password of the program's own.
SAVJEE_TASK = """\
#include <Arduino.h>
#include <WiFiClientSecure.h>
#include <MQTTClient.h>
#include "../config/config.h"

WiFiClientSecure AWS_net;
MQTTClient AWS_mqtt = MQTTClient(512);

void keepAWSConnectionAlive(void * parameter){
    AWS_net.setCACert(AWS_CERT_CA);
    AWS_mqtt.begin("a2xyzexample-ats.iot.eu-west-1.amazonaws.com", 8883, AWS_net);
    while (!AWS_mqtt.connect(DEVICE_NAME, HA_USER, HA_PASSWORD)) {
        vTaskDelay(MQTT_CONNECT_DELAY);
    }
}
"""


def test_a_connect_with_the_programs_own_user_name_is_refused_by_name(tmp_path):
    # The user name and password stayed while the report said the file was rewritten.
    _write(tmp_path, {"src/tasks/mqtt-aws.h": SAVJEE_TASK})
    points = [p for f in scan(tmp_path, PatchOptions(hub=HUB)).files for p in f.touch_points]
    assert points
    assert all(p.verdict == "needs_human" for p in points)
    assert any("HA_USER" in p.reason for p in points)
    assert patch(tmp_path, PatchOptions(hub=HUB)).changed == {}


# A Raspberry Pi weather station publishing with paho on port 443 (found by code search
# for `IoT_protocol_name = "x-amzn-mqtt-ca"`; the index does not name its repository),
# copied from AWS's blog sample "How to implement MQTT with TLS client authentication on
# port 443 from client devices (Python)": an ssl.SSLContext offering AWS IoT's ALPN
# protocol and trusting AWS's root CA, given to paho with tls_set_context.
ALPN_PROGRAM = """\
from __future__ import print_function
import sys
import ssl
import time
import datetime
import logging, traceback
import paho.mqtt.client as mqtt

IoT_protocol_name = "x-amzn-mqtt-ca"
aws_iot_endpoint = "a2dixiflmrhbet-ats.iot.us-east-2.amazonaws.com" # <random>.iot.<region>
url = "https://{}".format(aws_iot_endpoint)

ca = "certs/aws-root-cert.pem"
cert = "certs/5e3cf63a5a-certificate.pem.crt"
private = "certs/5e3cf63a5a-private.pem.key"

logger = logging.getLogger()

def ssl_alpn():
    try:
        #debug print opnessl version
        logger.info("open ssl version:{}".format(ssl.OPENSSL_VERSION))
        ssl_context = ssl.create_default_context()
        ssl_context.set_alpn_protocols([IoT_protocol_name])
        ssl_context.load_verify_locations(cafile=ca)
        ssl_context.load_cert_chain(certfile=cert, keyfile=private)

        return  ssl_context
    except Exception as e:
        print("exception ssl_alpn()")
        raise e

if __name__ == '__main__':
    topic = "raspi/temphum"
    try:
        mqttc = mqtt.Client(client_id="raspi-weather-1")
        ssl_context= ssl_alpn()
        mqttc.tls_set_context(context=ssl_context)
        mqttc.connect(aws_iot_endpoint, port=443)
        mqttc.loop_start()
        for reading in range(2):
            info = mqttc.publish(topic, '{"reading": %d}' % reading, qos=1)
            info.wait_for_publish(10)
        mqttc.loop_stop()
    except Exception as e:
        logger.error("exception main()")
        traceback.print_exc(file=sys.stdout)
        sys.exit(1)
"""

# Amazon Root CA 1: what the program trusted; IoT Hub's certificate does not chain to it.
AMAZON_ROOT_CA1 = """\
-----BEGIN CERTIFICATE-----
MIIDQTCCAimgAwIBAgITBmyfz5m/jAo54vB4ikPmljZbyjANBgkqhkiG9w0BAQsF
ADA5MQswCQYDVQQGEwJVUzEPMA0GA1UEChMGQW1hem9uMRkwFwYDVQQDExBBbWF6
b24gUm9vdCBDQSAxMB4XDTE1MDUyNjAwMDAwMFoXDTM4MDExNzAwMDAwMFowOTEL
MAkGA1UEBhMCVVMxDzANBgNVBAoTBkFtYXpvbjEZMBcGA1UEAxMQQW1hem9uIFJv
b3QgQ0EgMTCCASIwDQYJKoZIhvcNAQEBBQADggEPADCCAQoCggEBALJ4gHHKeNXj
ca9HgFB0fW7Y14h29Jlo91ghYPl0hAEvrAIthtOgQ3pOsqTQNroBvo3bSMgHFzZM
9O6II8c+6zf1tRn4SWiw3te5djgdYZ6k/oI2peVKVuRF4fn9tBb6dNqcmzU5L/qw
IFAGbHrQgLKm+a/sRxmPUDgH3KKHOVj4utWp+UhnMJbulHheb4mjUcAwhmahRWa6
VOujw5H5SNz/0egwLX0tdHA114gk957EWW67c4cX8jJGKLhD+rcdqsq08p8kDi1L
93FcXmn/6pUCyziKrlA4b9v7LWIbxcceVOF34GfID5yHI9Y/QCB/IIDEgEw+OyQm
jgSubJrIqg0CAwEAAaNCMEAwDwYDVR0TAQH/BAUwAwEB/zAOBgNVHQ8BAf8EBAMC
AYYwHQYDVR0OBBYEFIQYzIU07LwMlJQuCFmcx7IQTgoIMA0GCSqGSIb3DQEBCwUA
A4IBAQCY8jdaQZChGsV2USggNiMOruYou6r4lK5IpDB/G/wkjUu0yKGX9rbxenDI
U5PMCCjjmCXPI6T53iHTfIUJrU6adTrCC2qJeHZERxhlbI1Bjjt/msv0tadQ1wUs
N+gDS63pYaACbvXy8MWy7Vu33PqUXHeeE6V/Uq2V8viTO96LXFvKWlJbYK8U90vv
o/ufQJVtMVT8QtPHRh8jrdkPSHCa2XV4cdFyQzR1bldZwgJcJmApzyMZFo6IQ6XU
5MsI+yMRQ+hDKXJioaldXgjUkK642M4UwtBV8ob2xJNDd2ZhwLnoQdeXeGADbkpy
rqXRfboQnoZsG4q5WTP468SQvvG5
-----END CERTIFICATE-----
"""


@pytest.mark.parametrize(
    "context",
    [
        "ssl.create_default_context()",
        # The shape of a ThermoMaven Home Assistant integration's coordinator.py (found by
        # code search for `x-amzn-mqtt-ca`): a bare client context, so the AWS root CA is
        # all it trusts.
        "ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)",
    ],
)
def test_a_paho_ssl_context_on_port_443_trusts_iothub_and_runs_on_it(hub, rm, tmp_path, context):
    # The context kept loading AWS's root CA and offering AWS IoT's ALPN protocol while
    # the report listed neither: with a bare client context the device could not verify
    # IoT Hub at all.
    repo = tmp_path / "weather"
    device = "raspi-weather-2" if "PROTOCOL_TLS_CLIENT" in context else "raspi-weather-1"
    program = ALPN_PROGRAM.replace("ssl.create_default_context()", context)
    program = program.replace("raspi-weather-1", device)
    _write(repo, {"publish.py": program, "certs/aws-root-cert.pem": AMAZON_ROOT_CA1})
    report = scan(repo, PatchOptions(hub=hub.hostname))
    kinds = {(p.line, p.kind): p.verdict for f in report.files for p in f.touch_points}
    loaded = _line(ALPN_PROGRAM, "load_verify_locations")
    assert kinds[(loaded, "root_ca")] == "rewritten"
    assert kinds[(_line(ALPN_PROGRAM, "set_alpn_protocols"), "alpn")] == "rewritten"
    outcome = patch_repo(repo, hub.hostname)
    assert "x-amzn-mqtt-ca" not in outcome.changed["publish.py"].split("set_alpn_protocols")[1]
    provision(
        rm,
        repo,
        device,
        "certs/5e3cf63a5a-certificate.pem.crt",
        "certs/5e3cf63a5a-private.pem.key",
    )
    result = run_program(hub, repo, "publish.py")
    assert result.returncode == 0, result.stdout + result.stderr
    events = telemetry(hub, device)
    assert [e.body for e in events] == [b'{"reading": 0}', b'{"reading": 1}']
    assert {e.properties["awsTopic"] for e in events} == {"raspi/temphum"}


# aws/aws-iot-device-sdk-cpp-v2, samples/mqtt/basic_connect/main.cpp (trimmed): the
# endpoint, certificate and key come from the command line, so no line names AWS's host.
CPP_V2_BASIC_CONNECT = """\
#include <aws/crt/Api.h>
#include <aws/crt/UUID.h>

#include "../../utils/CommandLineUtils.h"

using namespace Aws::Crt;

int main(int argc, char *argv[])
{
    ApiHandle apiHandle;
    Utils::CommandLineUtils cmdUtils = Utils::CommandLineUtils();
    cmdUtils.RegisterProgramName("basic-connect");
    cmdUtils.AddCommonMQTTCommands();
    const char **const_argv = (const char **)argv;
    cmdUtils.SendArguments(const_argv, const_argv + argc);

    Aws::Iot::MqttClient client = Aws::Iot::MqttClient();
    std::shared_ptr<Aws::Crt::Mqtt::MqttConnection> connection =
        cmdUtils.BuildDirectMQTTConnection(&client);
    String clientId =
        cmdUtils.GetCommandOrDefault("client_id", String("test-") + Aws::Crt::UUID().ToString());
    cmdUtils.SampleConnectAndDisconnect(connection, clientId);
    return 0;
}
"""

# The same SDK with the endpoint written in, as device projects built on it do.
CPP_V2_PROGRAM = """\
#include <aws/crt/Api.h>
#include <aws/iot/MqttClient.h>

using namespace Aws::Crt;

int main()
{
    ApiHandle apiHandle;
    auto builder = Aws::Iot::MqttClientConnectionConfigBuilder("device.pem.crt", "private.pem.key");
    builder.WithEndpoint("a1b2c3d4e5f6g7-ats.iot.us-east-1.amazonaws.com");
    auto clientConfig = builder.Build();
    Aws::Iot::MqttClient client;
    auto connection = client.NewConnection(clientConfig);
    connection->Connect("cpp-thing-1", false, 1000);
    return 0;
}
"""

# aws/aws-iot-device-sdk-java-v2, samples/BasicPubSub/src/main/java/pubsub/PubSub.java as
# of 2019 (trimmed): the CRT's own MqttClient and the jobs client, endpoint from args.
JAVA_V2_PUBSUB = """\
package pubsub;

import software.amazon.awssdk.crt.io.ClientBootstrap;
import software.amazon.awssdk.crt.io.TlsContext;
import software.amazon.awssdk.crt.io.TlsContextOptions;
import software.amazon.awssdk.crt.mqtt.MqttClient;
import software.amazon.awssdk.crt.mqtt.MqttConnection;
import software.amazon.awssdk.iot.iotjobs.IotJobsClient;

class PubSub {
    static String endpoint;
    static int port = 8883;

    public static void main(String[] args) {
        endpoint = args[0];
        ClientBootstrap clientBootstrap = new ClientBootstrap(new EventLoopGroup(1));
        TlsContextOptions tlsContextOptions = TlsContextOptions.createWithMTLS(args[1], args[2]);
        TlsContext tlsContext = new TlsContext(tlsContextOptions);
        MqttClient client = new MqttClient(clientBootstrap, tlsContext);
        MqttConnection connection = new MqttConnection(client, null);
        IotJobsClient jobs = new IotJobsClient(connection);
        connection.connect("sdk-java", endpoint, port, null, tlsContext, true, 0);
    }
}
"""

# A Go device on Eclipse Paho Go (found by code search for `opts.AddBroker("tls://`; a
# Lamassu JITP test, the index does not name its repository): AWS's endpoint comes from
# the environment.
GO_PAHO = """\
package main

import (
\t"fmt"
\t"os"

\tMQTT "github.com/eclipse/paho.mqtt.golang"
)

func main() {
\ttlsconfig := NewTLSConfig()

\topts := MQTT.NewClientOptions()
\tawsEndpoint := os.Getenv("AWS_ENDPOINT")
\topts.AddBroker("tls://" + awsEndpoint + ":8883")
\topts.SetClientID("markeldemodev").SetTLSConfig(tlsconfig)
\tfmt.Println("AWS endpoint: " + awsEndpoint)

\tc := MQTT.NewClient(opts)
\tif token := c.Connect(); token.Wait() && token.Error() != nil {
\t\tpanic(token.Error())
\t}
\tc.Publish("markeldemodev/hello", 0, false, "Lamassu JITP test")
\tc.Disconnect(250)
}
"""


@pytest.mark.parametrize(
    ("path", "text", "needle", "library"),
    [
        ("basic_connect/main.cpp", CPP_V2_BASIC_CONNECT, "MqttClient()", "cpp-v2"),
        ("pubsub/PubSub.java", JAVA_V2_PUBSUB, "new MqttClient(", "java-v2"),
        ("cmd/device/main.go", GO_PAHO, "AddBroker", "Paho Go"),
    ],
)
def test_a_stack_no_recipe_rewrites_says_what_a_human_must_do(
    tmp_path, path, text, needle, library
):
    # These programs were silent passes: no endpoint literal, so nothing was reported
    # (or, for the Java sample, only the jobs client, with no word about the connection).
    _write(tmp_path, {path: text})
    points = [p for f in scan(tmp_path, PatchOptions(hub=HUB)).files for p in f.touch_points]
    clients = [p for p in points if p.kind == "mqtt_client"]
    assert [p.line for p in clients] == [_line(text, needle)]
    assert clients[0].verdict == "needs_human"
    assert library in clients[0].reason
    assert "{hub}/{device id}/?api-version=2021-04-12" in clients[0].reason
    assert patch(tmp_path, PatchOptions(hub=HUB)).changed == {}


def test_an_aws_cpp_sdk_program_is_not_half_moved_to_the_hub(tmp_path):
    # Its endpoint literal was rewritten and reported "rewritten": the SDK then dialled
    # the hub with AWS's metrics user name and AWS's APIs.
    _write(tmp_path, {"src/main.cpp": CPP_V2_PROGRAM})
    assert patch(tmp_path, PatchOptions(hub=HUB)).changed == {}
    points = [p for f in scan(tmp_path, PatchOptions(hub=HUB)).files for p in f.touch_points]
    assert all(p.verdict == "needs_human" for p in points)
    endpoint = next(p for p in points if p.kind == "endpoint")
    assert "aws-iot-device-sdk-cpp-v2" in endpoint.reason


# Node programs on mqtt.js (npm `mqtt`) straight to AWS IoT with key/cert/ca options, as
# found by code search for `mqtt.connect` with `AmazonRootCA1` (the index does not name
# their repositories): one CommonJS, one TypeScript importing `connect`.
MQTT_JS = """\
import * as fs from 'fs';
import * as mqtt from 'mqtt';

const amazonRootCA1 = fs.readFileSync(`${__dirname}/AmazonRootCA1.pem`);
const file = fs.readFileSync(`${__dirname}/device-certificate.json`).toString();
const deviceCertificates = JSON.parse(file);
const options = {
  port: 8883,
  host: 'a1r289pzzumq0y-ats.iot.us-east-1.amazonaws.com',
  key: deviceCertificates.privateKey,
  cert: deviceCertificates.certificate,
  rejectUnauthorized: false,
  ca: amazonRootCA1,
  protocol: 'mqtts',
  clientId: 'client',
};
const client = mqtt.connect(options);
const topic = 'message';
client.publish(topic, 'hello', {
  qos: 1,
});
client.end();
"""

MQTT_TS = """\
import { IClientOptions, MqttClient, MqttProtocol, connect } from 'mqtt';
import fs from 'fs';
const options: IClientOptions = {
    key: fs.readFileSync('./secrets/private-key.key'),
    cert: fs.readFileSync('./secrets/device-certificate.certificate.pem.crt'),
    ca: fs.readFileSync('./secrets/Root CA1 certificate.pem'),
    clientId: 'FrontEnd',
    host: 'a3ocln6ms6dr86-ats.iot.us-east-2.amazonaws.com',
    protocol: 'mqtts' as MqttProtocol,
    port: 8883
};
const client = connect(options);
export default client;
"""


@pytest.mark.parametrize(
    ("path", "text", "needle"),
    [("index.mjs", MQTT_JS, "mqtt.connect("), ("src/client.ts", MQTT_TS, "= connect(")],
)
def test_an_mqtt_js_program_says_what_a_human_must_do(tmp_path, path, text, needle):
    # Reported only as loose lines (an endpoint, a client id, certificates), with no word
    # that the client is not rewritten or what IoT Hub needs from it.
    _write(tmp_path, {path: text})
    points = [p for f in scan(tmp_path, PatchOptions(hub=HUB)).files for p in f.touch_points]
    clients = [p for p in points if p.kind == "mqtt_client"]
    assert [(p.line, p.verdict) for p in clients] == [(_line(text, needle), "needs_human")]
    assert clients[0].reason.startswith("mqtt.js is not rewritten")
    assert "devices/{device id}/messages/events/" in clients[0].reason


# An asyncio program on aiomqtt talking to AWS IoT. Code search found aiomqtt programs
# (none pointed at AWS IoT by name), so this one is written in their shape with the
# endpoint, client id and certificates a thing needs: an `async with aiomqtt.Client(...)`
# given an ssl context, subscribing to a shadow delta and publishing telemetry.
AIOMQTT = """\
import asyncio
import json
import ssl

import aiomqtt

ENDPOINT = "a1b2c3d4e5f6g7-ats.iot.eu-central-1.amazonaws.com"
THING = "greenhouse-5"


async def main():
    tls = ssl.create_default_context(cafile="certs/AmazonRootCA1.pem")
    tls.load_cert_chain("certs/device.pem.crt", "certs/private.pem.key")
    async with aiomqtt.Client(ENDPOINT, port=8883, identifier=THING, tls_context=tls) as client:
        await client.subscribe(f"$aws/things/{THING}/shadow/update/delta")
        await client.publish(f"greenhouse/{THING}/telemetry", json.dumps({"t": 21}))


asyncio.run(main())
"""


def test_an_aiomqtt_program_is_not_half_moved_to_the_hub(tmp_path):
    # The generic recipe rewrote its endpoint literal as if the file were a settings
    # module and reported it "rewritten": the program then reached the hub with no user
    # name and AWS's topics, and nothing said the client is not rewritten.
    _write(tmp_path, {"main.py": AIOMQTT})
    assert patch(tmp_path, PatchOptions(hub=HUB)).changed == {}
    points = [p for f in scan(tmp_path, PatchOptions(hub=HUB)).files for p in f.touch_points]
    assert all(p.verdict == "needs_human" for p in points)
    clients = [p for p in points if p.kind == "mqtt_client"]
    assert [p.line for p in clients] == [_line(AIOMQTT, "aiomqtt.Client(")]
    assert clients[0].reason.startswith("aiomqtt is not rewritten")


# A Raspberry Pi publisher on paho in the shape of BH-iOT/Getting-started-with-AWS-IoT-Core,
# Python/paho_test.py, with its endpoint, thing name and certificate paths moved into a
# config.json as many Pi projects keep them (no public program of exactly this shape was
# found by name): the program itself names no AWS host.
CONFIG_PROGRAM = """\
import json
import time

import paho.mqtt.client as mqtt

with open("config.json") as f:
    config = json.load(f)

client = mqtt.Client(client_id=config["thingName"])
client.tls_set(ca_certs=config["rootCA"], certfile=config["cert"], keyfile=config["key"])
client.connect(config["endpoint"], 8883, 60)
client.loop_start()
info = client.publish("factory/line1/" + config["thingName"], json.dumps({"ok": 1}), qos=1)
info.wait_for_publish(10)
client.loop_stop()
"""

CONFIG_JSON = """\
{
  "endpoint": "a1b2c3d4e5f6g7-ats.iot.us-east-1.amazonaws.com",
  "thingName": "line1-press-4",
  "rootCA": "certs/AmazonRootCA1.pem",
  "cert": "certs/device.pem.crt",
  "key": "certs/private.pem.key"
}
"""


def test_a_program_reading_its_endpoint_from_a_settings_file_is_moved_with_it(hub, rm, tmp_path):
    # config.json's endpoint was rewritten to the hub while publisher.py, naming no AWS
    # host itself, was never looked at: it dialled the hub with no user name and AWS's
    # topics, and the report did not list it.
    repo = tmp_path / "press"
    _write(
        repo,
        {
            "publisher.py": CONFIG_PROGRAM,
            "config.json": CONFIG_JSON,
            "certs/AmazonRootCA1.pem": AMAZON_ROOT_CA1,
            # A paho program on another broker: the settings file's name is the link.
            "local.py": CONFIG_PROGRAM.replace("config.json", "broker.json"),
            "broker.json": '{"endpoint": "mosquitto.local"}\n',
        },
    )
    report = scan(repo, PatchOptions(hub=hub.hostname))
    stacks = {f.file: f.stack for f in report.files}
    assert stacks["publisher.py"] == "python_paho"
    assert "local.py" not in stacks
    outcome = patch_repo(repo, hub.hostname)
    assert {"publisher.py", "config.json"} <= set(outcome.changed)
    provision(rm, repo, "line1-press-4", "certs/device.pem.crt", "certs/private.pem.key")
    result = run_program(hub, repo, "publisher.py")
    assert result.returncode == 0, result.stdout + result.stderr
    events = telemetry(hub, "line1-press-4")
    assert [e.body for e in events] == [b'{"ok": 1}']
    assert events[0].properties["awsTopic"] == "factory/line1/line1-press-4"


# knolleary/pubsubclient, examples/mqtt_esp8266/mqtt_esp8266.ino (trimmed), as ESP8266
# AWS IoT tutorials adapt it: a BearSSL client pointed at the AWS endpoint, keeping the
# example's random client id.
RANDOM_ID = """\
#include <ESP8266WiFi.h>
#include <PubSubClient.h>

const char* mqtt_server = "a3f3ubc1y6ermt-ats.iot.us-east-2.amazonaws.com";

BearSSL::WiFiClientSecure espClient;
PubSubClient client(espClient);

void reconnect() {
  // Loop until we're reconnected
  while (!client.connected()) {
    // Create a random client ID
    String clientId = "ESP8266Client-";
    clientId += String(random(0xffff), HEX);
    // Attempt to connect
    if (client.connect(clientId.c_str())) {
      // ... and resubscribe
      client.subscribe("inTopic");
    } else {
      delay(5000);
    }
  }
}

void setup() {
  client.setServer(mqtt_server, 8883);
}

void loop() {
  if (!client.connected()) {
    reconnect();
  }
  client.loop();
  client.publish("outTopic", "hello world");
}
"""


@needs_gxx
def test_a_random_pubsubclient_id_takes_the_device_id_from_the_option(tmp_path):
    # `--device-id-from literal:ID` did nothing for PubSubClient: the sketch stayed
    # refused ("connect() without a client id macro") with no hint of the option.
    _write(tmp_path, {"mqtt_esp8266/mqtt_esp8266.ino": RANDOM_ID})
    refused = [p for f in scan(tmp_path, PatchOptions(hub=HUB)).files for p in f.touch_points]
    assert any("--device-id-from literal:ID" in p.reason for p in refused)
    options = PatchOptions(hub=HUB, device_id=DeviceIdSource.parse("literal:relay-8266-7"))
    outcome = patch(tmp_path, options, apply=True)
    assert "mqtt_esp8266/mqtt_esp8266.ino" in outcome.changed
    assert patch(tmp_path, options).changed == {}  # patching twice equals patching once
    calls = _run_sketch(
        tmp_path,
        tmp_path / "mqtt_esp8266",
        '#include "mqtt_esp8266.ino"\nint main() { setup(); loop(); return 0; }\n',
    )
    user = f"{HUB}/relay-8266-7/?api-version=2021-04-12"
    assert calls[:4] == [
        f"setServer {HUB} 8883",
        "setBufferSize 1024",
        f"connect relay-8266-7 {user} (none)",
        "subscribe devices/relay-8266-7/messages/devicebound/#",
    ]
    _, topic, payload = calls[4].split(" ", 2)
    assert payload == "hello world"
    assert _bag(topic) == ("devices/relay-8266-7", topic_properties("outTopic"))


# A kiosk on aws-iot-device-sdk (v1) over SigV4 websockets, configured as the SDK's
# README (aws/aws-iot-device-sdk-js, README.md, "protocol: 'wss'" with IAM credentials)
# shows, with the package.json that installs it.
WSS_DEVICE = """\
const awsIot = require('aws-iot-device-sdk');

const device = awsIot.device({
  clientId: 'browser-kiosk-1',
  host: 'a1b2c3d4e5f6g7-ats.iot.us-east-1.amazonaws.com',
  protocol: 'wss',
  accessKeyId: process.env.AWS_ACCESS_KEY_ID,
  secretKey: process.env.AWS_SECRET_ACCESS_KEY,
  region: 'us-east-1',
});

device.on('connect', () => {
  device.subscribe('kiosk/commands');
  device.publish('kiosk/status', JSON.stringify({ online: true }));
});
"""


def test_a_manifest_is_not_rewritten_for_a_program_that_is_not(tmp_path):
    # package.json was reported "rewritten" (Microsoft's packages added) while its only
    # program, a SigV4 websocket device, was refused: a diff promising a move that never
    # happens.
    _write(
        tmp_path,
        {
            "kiosk/device.js": WSS_DEVICE,
            "kiosk/package.json": '{"name": "kiosk", "dependencies": '
            '{"aws-iot-device-sdk": "^2.2.13"}}\n',
        },
    )
    assert patch(tmp_path, PatchOptions(hub=HUB)).changed == {}
    report = scan(tmp_path, PatchOptions(hub=HUB))
    manifest = next(f for f in report.files if f.file == "kiosk/package.json")
    assert [p.verdict for p in manifest.touch_points] == ["needs_human"]
    assert "kiosk/device.js" in manifest.touch_points[0].reason


# A PlatformIO project in the layout of Savjee/home-energy-monitor's src-esp32 (trimmed;
# platformio.ini, src/main.cpp, include/secrets.h): the thing name is a const char array
# and the topics are defines, both in the header the source includes.
PIO_INI = """\
[env:esp32dev]
platform = espressif32
board = esp32dev
framework = arduino
lib_deps = 256dpi/MQTT@^2.5.0
"""

PIO_MAIN = """\
#include <Arduino.h>
#include <WiFiClientSecure.h>
#include <MQTTClient.h>
#include "secrets.h"

WiFiClientSecure net = WiFiClientSecure();
MQTTClient client = MQTTClient(256);

void setup() {
  net.setCACert(AWS_CERT_CA);
  net.setCertificate(AWS_CERT_CRT);
  net.setPrivateKey(AWS_CERT_PRIVATE);
  client.begin(AWS_IOT_ENDPOINT, 8883, net);
  while (!client.connect(THINGNAME)) {
    delay(100);
  }
  client.subscribe(AWS_IOT_SUBSCRIBE_TOPIC);
}

void loop() {
  client.loop();
  client.publish(AWS_IOT_PUBLISH_TOPIC, "{\\"watts\\":230}");
}
"""

PIO_SECRETS = """\
#pragma once
#include <pgmspace.h>

const char THINGNAME[] = "energy-monitor-2";
#define AWS_IOT_PUBLISH_TOPIC   "home-energy/readings"
#define AWS_IOT_SUBSCRIBE_TOPIC "home-energy/commands"

const char AWS_IOT_ENDPOINT[] = "a2xyzexample-ats.iot.eu-west-1.amazonaws.com";
static const char AWS_CERT_CA[] PROGMEM = "Amazon Root CA 1";
static const char AWS_CERT_CRT[] PROGMEM = "device certificate";
static const char AWS_CERT_PRIVATE[] PROGMEM = "device key";
"""


@needs_gxx
def test_a_platformio_project_takes_its_names_from_the_included_header(tmp_path):
    # THINGNAME was spliced into IOTHUB_USER as if it were a macro (a const char array:
    # the patched main.cpp would not compile), and the topics, defined in the header,
    # were refused ("would not parse"), so the project kept AWS's topics.
    _write(
        tmp_path,
        {"platformio.ini": PIO_INI, "src/main.cpp": PIO_MAIN, "include/secrets.h": PIO_SECRETS},
    )
    outcome = patch(tmp_path, PatchOptions(hub=HUB), apply=True)
    assert {"src/main.cpp", "include/secrets.h"} <= set(outcome.changed)
    assert patch(tmp_path, PatchOptions(hub=HUB)).changed == {}
    probe = '#include "main.cpp"\nint main() { setup(); loop(); return 0; }\n'
    flags = ["-I", str(tmp_path / "include")]
    calls = _run_sketch(tmp_path, tmp_path / "src", probe, flags)
    user = f"{HUB}/energy-monitor-2/?api-version=2021-04-12"
    assert calls[:4] == [
        "buffer 1024",
        f"begin {HUB} 8883",
        f"connect energy-monitor-2 {user} (none)",
        "subscribe devices/energy-monitor-2/messages/devicebound/#",
    ]
    _, topic, payload = calls[4].split(" ", 2)
    assert payload == '{"watts":230}'
    assert _bag(topic) == ("devices/energy-monitor-2", topic_properties("home-energy/readings"))


# An ESP32 sketch reporting its status to its classic shadow with ArduinoJson (found by
# code search for `publish("$aws/things/" THINGNAME "/shadow/update"`; the index does not
# name its repository), trimmed.
SHADOW_LITERAL = """\
#include <WiFiClientSecure.h>
#include <PubSubClient.h>
#include <ArduinoJson.h>
#include "secrets.h"

WiFiClientSecure net;
PubSubClient client(net);

bool reportStatus() {
  StaticJsonDocument<256> statusDoc;
  statusDoc["state"]["reported"]["status"] = "online";
  char buffer[256];
  size_t n = serializeJson(statusDoc, buffer);
  client.publish("$aws/things/" THINGNAME "/shadow/update", buffer, n);
  return true;
}

void connectAWSIoT() {
  net.setCACert(AWS_CERT_CA);
  client.setServer(AWS_IOT_ENDPOINT, 8883);
  client.connect(THINGNAME);
}
"""


def test_a_shadow_update_spelled_in_the_publish_call_is_left_to_a_human(tmp_path):
    # The line was reported "rewritten" (topic) and its shadow reason spoke of a
    # callback, while the patch left the publish on $aws/...
    _write(tmp_path, {"status/status.ino": SHADOW_LITERAL})
    line = _line(SHADOW_LITERAL, '"/shadow/update"')
    points = [
        p
        for f in scan(tmp_path, PatchOptions(hub=HUB)).files
        for p in f.touch_points
        if p.line == line
    ]
    assert {p.kind for p in points} == {"topic", "shadow"}
    assert all(p.verdict == "needs_human" for p in points)
    assert all("$iothub/twin/PATCH/properties/reported/" in p.reason for p in points)


def test_scanning_a_patched_repository_lists_no_work_that_is_done(tmp_path):
    # After `patch --apply`, a scan to check the result listed every line the patch had
    # written (setCACert(IOTHUB_ROOT_CAS), iothub_publish(...), the generated block's
    # keep-alive helper, the hub host in secrets.h) as "found, but the recipe had nothing
    # it could change here: by hand".
    _write(
        tmp_path,
        {
            "module-3/module-3.ino": LETSBUILD_MAIN,
            "module-3/AWS.ino": LETSBUILD_AWS,
            "module-3/secrets.h": LETSBUILD_SECRETS,
            "press/publisher.py": CONFIG_PROGRAM,
            "press/config.json": CONFIG_JSON,
        },
    )
    before = scan(tmp_path, PatchOptions(hub=HUB))
    needed = {(f.file, p.line, p.kind) for f in before.files for p in f.touch_points}
    patch(tmp_path, PatchOptions(hub=HUB), apply=True)
    after = scan(tmp_path, PatchOptions(hub=HUB))
    reasons = [p.reason for f in after.files for p in f.touch_points]
    assert not any("nothing it could change" in reason for reason in reasons)
    human = {
        (f.file, p.kind) for f in after.files for p in f.touch_points if p.verdict != "rewritten"
    }
    # What still needs a human is what did before: the AWS root CA left in secrets.h and
    # the certificate paths config.json keeps.
    assert human == {(file, kind) for file, _, kind in needed if file.endswith((".h", ".json"))} - {
        ("module-3/secrets.h", "config_key"),
        ("module-3/secrets.h", "endpoint"),
        ("press/config.json", "endpoint"),
    }
