"""Gaps a fourth sweep over public device code found after `test_sweep3.py`.

Each test holds a trimmed excerpt of the public program it came from (named in the
test) and fails without the fix it guards.
"""

from __future__ import annotations

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


# aws/aws-iot-device-sdk-embedded-C, demos/mqtt/mqtt_demo_mutual_auth/demo_config.h and
# mqtt_demo_mutual_auth.c (trimmed; the endpoint and certificate paths filled in as the
# demo's README asks). Its settings are AWS_IOT_ENDPOINT and CLIENT_IDENTIFIER, the
# latter inside #ifndef so the build may pass -DCLIENT_IDENTIFIER; the root CA is a file.
EMBEDDED_C_CONFIG = """\
#ifndef DEMO_CONFIG_H_
#define DEMO_CONFIG_H_

/**
 * @brief Details of the MQTT broker to connect to.
 *
 * @note Your AWS IoT Core endpoint can be found in the AWS IoT console under
 * Settings/Custom Endpoint, or using the describe-endpoint API.
 */
#define AWS_IOT_ENDPOINT               "a1b2c3d4e5f6g7-ats.iot.us-west-2.amazonaws.com"

#define AWS_MQTT_PORT    ( 8883 )

#ifndef ROOT_CA_CERT_PATH
    #define ROOT_CA_CERT_PATH    "certificates/AmazonRootCA1.crt"
#endif

#define CLIENT_CERT_PATH    "certificates/device.pem.crt"

#define CLIENT_PRIVATE_KEY_PATH    "certificates/private.pem.key"

/**
 * @brief MQTT client identifier.
 *
 * No two clients may use the same client identifier simultaneously.
 */
#ifndef CLIENT_IDENTIFIER
    #define CLIENT_IDENTIFIER    "testclient"
#endif

#define OS_NAME                   "Ubuntu"
#define OS_VERSION                "18.04 LTS"
#define HARDWARE_PLATFORM_NAME    "Posix"

#endif /* ifndef DEMO_CONFIG_H_ */
"""
EMBEDDED_C_DEMO = """\
#include <stdlib.h>
#include <string.h>

/* Include Demo Config as the first non-system header. */
#include "demo_config.h"

/* MQTT API headers. */
#include "core_mqtt.h"

#ifndef ROOT_CA_CERT_PATH
    #error "Please define path to Root CA certificate of the MQTT broker(ROOT_CA_CERT_PATH)."
#endif

#define CLIENT_IDENTIFIER_LENGTH    ( ( uint16_t ) ( sizeof( CLIENT_IDENTIFIER ) - 1 ) )
#define MQTT_EXAMPLE_TOPIC                  CLIENT_IDENTIFIER "/example/topic"
#define MQTT_EXAMPLE_TOPIC_LENGTH           ( ( uint16_t ) ( sizeof( MQTT_EXAMPLE_TOPIC ) - 1 ) )
#define MQTT_EXAMPLE_MESSAGE                "Hello World!"
#define MQTT_KEEP_ALIVE_INTERVAL_SECONDS    ( 60U )
#define CONNACK_RECV_TIMEOUT_MS             ( 1000U )
#define MQTT_LIB    "core-mqtt@" MQTT_LIBRARY_VERSION
#define METRICS_STRING                      "?SDK=" OS_NAME "&Version=" OS_VERSION \\
    "&Platform=" HARDWARE_PLATFORM_NAME "&MQTTLib=" MQTT_LIB
#define METRICS_STRING_LENGTH               ( ( uint16_t ) ( sizeof( METRICS_STRING ) - 1 ) )

#ifdef CLIENT_USERNAME
    #define CLIENT_USERNAME_WITH_METRICS    CLIENT_USERNAME METRICS_STRING
#endif

const char * rootCaPath( void )
{
    return ROOT_CA_CERT_PATH;
}

int establishMqttSession( MQTTContext_t * pMqttContext,
                          bool createCleanSession,
                          bool * pSessionPresent )
{
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
    return mqttStatus == MQTTSuccess ? EXIT_SUCCESS : EXIT_FAILURE;
}

int publishToTopic( MQTTContext_t * pMqttContext )
{
    MQTTPublishInfo_t publishInfo = { 0 };

    publishInfo.qos = MQTTQoS1;
    publishInfo.pTopicName = MQTT_EXAMPLE_TOPIC;
    publishInfo.topicNameLength = MQTT_EXAMPLE_TOPIC_LENGTH;
    publishInfo.pPayload = MQTT_EXAMPLE_MESSAGE;
    publishInfo.payloadLength = strlen( MQTT_EXAMPLE_MESSAGE );

    return MQTT_Publish( pMqttContext, &publishInfo, MQTT_GetPacketId( pMqttContext ) );
}
"""
EMBEDDED_C_DIR = "demos/mqtt/mqtt_demo_mutual_auth"


def _embedded_c_demo(root: Path) -> Path:
    demo = root / EMBEDDED_C_DIR
    demo.mkdir(parents=True)
    (demo / "demo_config.h").write_text(EMBEDDED_C_CONFIG, encoding="utf-8")
    (demo / "mqtt_demo_mutual_auth.c").write_text(EMBEDDED_C_DEMO, encoding="utf-8")
    return demo


@pytest.mark.skipif(GCC is None, reason="gcc is not installed")
@pytest.mark.parametrize("build_id", [None, "porch-7"])
def test_the_embedded_c_demo_connects_to_iothub_with_its_user_name(tmp_path, build_id):
    # demo_config.h was the generic recipe's: the source's metrics user name became
    # IoT Hub's user name macro, which nothing defined, so the demo no longer compiled.
    demo = _embedded_c_demo(tmp_path / "repo")
    outcome = patch(tmp_path / "repo", PatchOptions(hub=HUB), apply=True)
    assert outcome.report.files[0].stack == "c_coremqtt"
    for name in ("demo_config.h", "mqtt_demo_mutual_auth.c"):
        assert error_count(parse_c((demo / name).read_bytes())) == 0
    probe = tmp_path / "probe.c"
    probe.write_text(
        '#define MQTT_LIBRARY_VERSION "v2.1.1"\n'
        f'#include "{demo / "mqtt_demo_mutual_auth.c"}"\n#include <stdio.h>\n'
        "MQTTStatus_t MQTT_Connect(MQTTContext_t *c, const MQTTConnectInfo_t *i,"
        " const MQTTPublishInfo_t *w, uint32_t t, bool *s) {\n"
        '  printf("%.*s|%.*s\\n", i->clientIdentifierLength, i->pClientIdentifier,'
        " i->userNameLength, i->pUserName);\n"
        "  (void)c; (void)w; (void)t; (void)s; return MQTTSuccess;\n}\n"
        "MQTTStatus_t MQTT_Publish(MQTTContext_t *c, const MQTTPublishInfo_t *p, uint16_t i)"
        " { (void)c; (void)p; (void)i; return MQTTSuccess; }\n"
        "uint16_t MQTT_GetPacketId(MQTTContext_t *c) { (void)c; return 1; }\n"
        "int main(void) {\n"
        "  MQTTContext_t context; bool present;\n"
        '  printf("%s\\n", AWS_IOT_ENDPOINT);\n'
        "  return establishMqttSession(&context, true, &present);\n}\n"
    )
    binary = tmp_path / "probe"
    flags = ["-std=gnu11", "-Wall", "-Werror", "-I", str(STUBS), "-I", str(demo)]
    if build_id:
        flags.append(f'-DCLIENT_IDENTIFIER="{build_id}"')
    subprocess.run([GCC, *flags, "-o", str(binary), str(probe)], check=True)
    out = subprocess.run([str(binary)], capture_output=True, text=True, check=True).stdout
    device = build_id or "testclient"
    assert out.splitlines() == [HUB, f"{device}|{HUB}/{device}/?api-version=2021-04-12"]
    assert patch(tmp_path / "repo", PatchOptions(hub=HUB)).changed == {}  # idempotent


def test_the_embedded_c_demos_root_ca_file_and_own_topic_need_a_human(tmp_path):
    # Both were reported "rewritten" while the demo kept loading AmazonRootCA1.crt and
    # publishing to testclient/example/topic, which IoT Hub refuses.
    _embedded_c_demo(tmp_path)
    source = f"{EMBEDDED_C_DIR}/mqtt_demo_mutual_auth.c"
    config = f"{EMBEDDED_C_DIR}/demo_config.h"
    points = {(p.file, p.line, p.kind): p for p in scan(tmp_path).touch_points}
    for file, text, needle, kind in [
        (config, EMBEDDED_C_CONFIG, '"certificates/AmazonRootCA1.crt"', "root_ca"),
        (source, EMBEDDED_C_DEMO, "return ROOT_CA_CERT_PATH;", "root_ca"),
        (source, EMBEDDED_C_DEMO, "#define MQTT_EXAMPLE_TOPIC ", "topic"),
        (source, EMBEDDED_C_DEMO, "return MQTT_Publish(", "topic"),
    ]:
        point = points[file, _line(text, needle), kind]
        assert point.verdict == "needs_human", point
    root_ca = points[config, _line(EMBEDDED_C_CONFIG, "AmazonRootCA1.crt"), "root_ca"]
    assert "ROOT_CA_CERT_PATH" in root_ca.reason
    assert "DigiCert Global Root G2" in root_ca.reason
    # what the patch does do is still claimed
    user = points[source, _line(EMBEDDED_C_DEMO, "pUserName = METRICS_STRING"), "username"]
    assert user.verdict == "rewritten"


# aws/aws-iot-device-sdk-embedded-C, demos/jobs/jobs_demo_mosquitto/jobs_demo_mosquitto.c
# (trimmed): AWS's Jobs library on libmosquitto, a client no recipe rewrites.
MOSQUITTO_JOBS = r"""#include <mosquitto.h>
#include "demo_config.h"
#include "jobs.h"

static void usage( const char * programName )
{
    fprintf( stderr,
             "$ %s -n device1 -h abcdefg123.iot.us-east-1.amazonaws.com \\\n"
             "  --certfile bbaf123456-certificate.pem.crt --keyfile bbaf123456-private.pem.key\n",
             programName );
}

static bool connect( handle_t * h )
{
    int ret = mosquitto_tls_set( h->m, h->cafile, h->capath, h->certfile, h->keyfile, NULL );

    if( ret == MOSQ_ERR_SUCCESS )
    {
        info( "Connecting to %s, port %d.", h->host, h->port );
        ret = mosquitto_connect( h->m, h->host, h->port, MQTT_KEEP_ALIVE );
    }

    return ret == MOSQ_ERR_SUCCESS;
}

static bool sendStartNext( handle_t * h )
{
    char topic[ JOBS_API_MAX_LENGTH( JOBS_THINGNAME_MAX_LENGTH ) ];
    JobsStatus_t jobs_ret;

    jobs_ret = Jobs_StartNext( topic,
                               sizeof( topic ),
                               h->name,
                               h->nameLength,
                               NULL );
    ( void ) jobs_ret;
    return mosquitto_publish( h->m, NULL, topic, 0, NULL, MQTT_QOS, false ) == MOSQ_ERR_SUCCESS;
}
"""


def test_a_libmosquitto_program_says_what_a_human_must_do(tmp_path):
    # It was reported by its usage text alone: nothing said that the client itself, a
    # library no recipe rewrites, has to be moved to IoT Hub by hand.
    (tmp_path / "jobs_demo_mosquitto.c").write_text(MOSQUITTO_JOBS, encoding="utf-8")
    report = scan(tmp_path)
    points = {(p.line, p.kind): p for p in report.touch_points}
    client = points[_line(MOSQUITTO_JOBS, "ret = mosquitto_connect("), "mqtt_client"]
    assert client.verdict == "needs_human"
    for needed in ("libmosquitto", "/?api-version=2021-04-12", "DigiCert Global Root G2"):
        assert needed in client.reason
    jobs = points[_line(MOSQUITTO_JOBS, "Jobs_StartNext("), "jobs"]
    assert jobs.verdict == "needs_human"
    assert report.counts()["rewritten"] == 0


# aws/aws-iot-device-sdk-python-v2, samples/mqtt5_pubsub.py (trimmed, the 2025 layout).
MQTT5_PUBSUB = """\
import argparse, uuid

parser = argparse.ArgumentParser(description="MQTT5 pub/sub sample (mTLS).")
parser.add_argument("--endpoint", required=True, dest="input_endpoint", help="IoT endpoint")
parser.add_argument("--cert", required=True, dest="input_cert", help="Client cert (PEM)")
parser.add_argument("--key", required=True, dest="input_key", help="Client private key (PEM)")
parser.add_argument("--topic", default="test/topic", dest="input_topic", help="Topic")
cmdData = parser.parse_args()

from awsiot import mqtt5_client_builder
from awscrt import mqtt5, http
import json
from concurrent.futures import Future

TIMEOUT = 100
future_connection_success = Future()

def on_publish_received(publish_packet_data):
    publish_packet = publish_packet_data.publish_packet
    print("Received message from topic'{}':{}".format(publish_packet.topic, publish_packet.payload))

def on_lifecycle_connection_success(lifecycle_connect_success_data):
    future_connection_success.set_result(lifecycle_connect_success_data)

if __name__ == '__main__':
    client = mqtt5_client_builder.mtls_from_path(
        endpoint=cmdData.input_endpoint,
        port=8883,
        cert_filepath=cmdData.input_cert,
        pri_key_filepath=cmdData.input_key,
        on_publish_received=on_publish_received,
        on_lifecycle_connection_success=on_lifecycle_connection_success,
        client_id="mqtt5-sample")
    client.start()
    future_connection_success.result(TIMEOUT)
    subscribe_future = client.subscribe(subscribe_packet=mqtt5.SubscribePacket(
        subscriptions=[mqtt5.Subscription(
            topic_filter=cmdData.input_topic,
            qos=mqtt5.QoS.AT_LEAST_ONCE)]
    ))
    subscribe_future.result(TIMEOUT)
    publish_future = client.publish(mqtt5.PublishPacket(
        topic=cmdData.input_topic,
        payload=json.dumps("hello"),
        qos=mqtt5.QoS.AT_LEAST_ONCE
    ))
    publish_future.result(TIMEOUT)
    client.stop()
"""

# aws/aws-iot-device-sdk-python-v2, samples/service_clients/shadow.py (trimmed): the V2
# shadow client over MQTT 5's request/response layer.
SHADOW_V2 = """\
from awsiot import iotshadow, mqtt5_client_builder
from awscrt import mqtt5, mqtt_request_response
import argparse, json

parser = argparse.ArgumentParser(description="AWS IoT Shadow sandbox application")
parser.add_argument('--endpoint', required=True, help="AWS IoT endpoint to connect to")
parser.add_argument('--cert', required=True, help="Path to the certificate file")
parser.add_argument('--key', required=True, help="Path to the private key file")
parser.add_argument('--thing', required=True, help="Name of the IoT thing to interact with")
args = parser.parse_args()

mqtt5_client = mqtt5_client_builder.mtls_from_path(
    endpoint=args.endpoint,
    port=8883,
    cert_filepath=args.cert,
    pri_key_filepath=args.key,
    clean_session=True,
    keep_alive_secs=1200)
mqtt5_client.start()

rr_options = mqtt_request_response.ClientOptions(
    max_request_response_subscriptions = 2,
    max_streaming_subscriptions = 2,
    operation_timeout_in_seconds = 30,
)
shadow_client = iotshadow.IotShadowClientV2(mqtt5_client, rr_options)

request = iotshadow.UpdateShadowRequest(thing_name=args.thing)
request.state = iotshadow.ShadowState(reported=json.loads('{"color": "green"}'))
response = shadow_client.update_shadow(request).result()
mqtt5_client.stop()
"""


@pytest.mark.parametrize(
    ("name", "text"), [("mqtt5_pubsub.py", MQTT5_PUBSUB), ("shadow.py", SHADOW_V2)]
)
def test_an_awsiotsdk_mqtt5_program_is_refused_as_a_whole(tmp_path, name, text):
    # The MQTT 5 builder was left alone (the program still connected to AWS) while its
    # topics were reported "rewritten", its QoS enums became ints and an adapter for the
    # MQTT 3 connection was injected that nothing called.
    (tmp_path / name).write_text(text, encoding="utf-8")
    outcome = patch(tmp_path, PatchOptions(hub=HUB))
    assert outcome.changed == {}
    points = outcome.report.touch_points
    assert points
    assert {p.verdict for p in points} == {"needs_human"}
    assert all("MQTT 5 client" in p.reason for p in points), points


# aws/aws-iot-device-sdk-python-v2, samples/jobs.py as of 2019 (trimmed; the module was
# later renamed from aws_crt to awscrt, as here): the connection is built by hand.
JOBS_RAW_CONNECTION = """\
import argparse
from awscrt import io, mqtt
from awsiot import iotjobs

parser = argparse.ArgumentParser(description="Jobs sample runs all pending job executions.")
parser.add_argument('--endpoint', required=True, help="Your AWS IoT custom endpoint")
parser.add_argument('--cert', required=True, help="File path to your client certificate")
parser.add_argument('--key', required=True, help="File path to your private key file")
parser.add_argument('--root-ca', help="File path to root certificate authority, in PEM format.")
parser.add_argument('--client-id', default='samples-client-id', help="Client ID for MQTT.")
parser.add_argument('--thing-name', required=True, help="The name assigned to your IoT Thing")

def on_next_job_execution_changed(event):
    print("Received Next Job Execution Changed event: {}".format(event.execution))

if __name__ == '__main__':
    args = parser.parse_args()
    event_loop_group = io.EventLoopGroup(1)
    client_bootstrap = io.ClientBootstrap(event_loop_group)

    tls_options = io.TlsContextOptions.create_client_with_mtls(args.cert, args.key)
    if args.root_ca:
        tls_options.override_default_trust_store(ca_path=None, ca_file=args.root_ca)
    tls_context = io.ClientTlsContext(tls_options)

    mqtt_client = mqtt.Client(client_bootstrap, tls_context)

    port = 443 if io.is_alpn_available() else 8883
    mqtt_connection = mqtt.Connection(
            client=mqtt_client)
    connected_future = mqtt_connection.connect(
            client_id=args.client_id,
            host_name = args.endpoint,
            port = port,
            use_websocket=False,
            clean_session=True,
            keep_alive=6000)

    jobs_client = iotjobs.IotJobsClient(mqtt_connection)
    connected_future.result()
    changed_subscription_request = iotjobs.NextJobExecutionChangedSubscriptionRequest(
        thing_name=args.thing_name)
    subscribed_future, _ = jobs_client.subscribe_to_next_job_execution_changed_events(
        request=changed_subscription_request,
        qos=mqtt.QoS.AT_LEAST_ONCE,
        callback=on_next_job_execution_changed)
    subscribed_future.result()
"""
# The same connection in a program on awscrt alone (no awsiot import).
PUBSUB_AWSCRT_ONLY = """\
import argparse
import json
from awscrt import io, mqtt

parser = argparse.ArgumentParser()
parser.add_argument('--endpoint', required=True)
parser.add_argument('--cert')
parser.add_argument('--key')
args = parser.parse_args()

event_loop_group = io.EventLoopGroup(1)
host_resolver = io.DefaultHostResolver(event_loop_group)
client_bootstrap = io.ClientBootstrap(event_loop_group, host_resolver)
tls_options = io.TlsContextOptions.create_client_with_mtls_from_path(args.cert, args.key)
client = mqtt.Client(client_bootstrap, io.ClientTlsContext(tls_options))
mqtt_connection = mqtt.Connection(client=client, host_name=args.endpoint, port=8883,
                                  client_id="basicPubSub", keep_alive_secs=30)
mqtt_connection.connect().result()
mqtt_connection.publish(topic="test/topic", payload=json.dumps({"a": 1}),
                        qos=mqtt.QoS.AT_LEAST_ONCE)
"""


def test_a_hand_built_awscrt_connection_is_refused_not_half_rewritten(tmp_path):
    # The jobs client became the IoT Hub adapter's, wrapped around an awscrt connection
    # that still went to AWS, and the report said the client id and keep-alive were done.
    (tmp_path / "jobs.py").write_text(JOBS_RAW_CONNECTION, encoding="utf-8")
    outcome = patch(tmp_path, PatchOptions(hub=HUB))
    assert outcome.changed == {}
    points = outcome.report.touch_points
    assert {p.kind for p in points} >= {"client_id", "keep_alive", "jobs"}
    assert {p.verdict for p in points} == {"needs_human"}
    assert all("built by hand (mqtt.Client/mqtt.Connection)" in p.reason for p in points)


def test_a_program_on_awscrt_alone_is_not_a_silent_pass(tmp_path):
    (tmp_path / "pubsub.py").write_text(PUBSUB_AWSCRT_ONLY, encoding="utf-8")
    report = scan(tmp_path)
    assert [f.stack for f in report.files] == ["python_awsiotsdk"]
    points = {p.kind: p for p in report.touch_points}
    assert {"client_id", "topic"} <= set(points)
    assert {p.verdict for p in points.values()} == {"needs_human"}


# aws/aws-iot-device-sdk-python-v2, samples/fleetprovisioning.py (trimmed).
FLEET_PROVISIONING = """\
from awscrt import mqtt, http
from awsiot import iotidentity, mqtt_connection_builder
import json
from utils.command_line_utils import CommandLineUtils

cmdData = CommandLineUtils.parse_sample_input_fleet_provisioning()
createKeysAndCertificateResponse = None

def createkeysandcertificate_execution_accepted(response):
    global createKeysAndCertificateResponse
    createKeysAndCertificateResponse = response

if __name__ == '__main__':
    mqtt_connection = mqtt_connection_builder.mtls_from_path(
        endpoint=cmdData.input_endpoint,
        port=cmdData.input_port,
        cert_filepath=cmdData.input_cert,
        pri_key_filepath=cmdData.input_key,
        ca_filepath=cmdData.input_ca,
        client_id=cmdData.input_clientId,
        clean_session=False,
        keep_alive_secs=30,
        http_proxy_options=None)

    connected_future = mqtt_connection.connect()
    identity_client = iotidentity.IotIdentityClient(mqtt_connection)
    connected_future.result()

    subscription_request = iotidentity.CreateKeysAndCertificateSubscriptionRequest()
    accepted_future, _ = identity_client.subscribe_to_create_keys_and_certificate_accepted(
        request=subscription_request,
        qos=mqtt.QoS.AT_LEAST_ONCE,
        callback=createkeysandcertificate_execution_accepted)
    accepted_future.result()

    publish_future = identity_client.publish_create_keys_and_certificate(
        request=iotidentity.CreateKeysAndCertificateRequest(), qos=mqtt.QoS.AT_LEAST_ONCE)
    publish_future.result()
"""


def test_a_fleet_provisioning_program_is_refused_not_half_rewritten(tmp_path):
    # The connection became an IoTHubDeviceClient and was handed to IotIdentityClient,
    # whose subscribe/publish calls it does not have: the program crashed on IoT Hub.
    (tmp_path / "fleetprovisioning.py").write_text(FLEET_PROVISIONING, encoding="utf-8")
    outcome = patch(tmp_path, PatchOptions(hub=HUB))
    assert outcome.changed == {}
    points = outcome.report.touch_points
    assert {"certificate", "client_id", "fleet_provisioning"} <= {p.kind for p in points}
    assert {p.verdict for p in points} == {"needs_human"}
    client_id = next(p for p in points if p.kind == "client_id")
    assert "Device Provisioning Service (DPS)" in client_id.reason


# aws/aws-iot-device-sdk-js, examples/jobs-agent.js (trimmed): the jobs API loaded from
# the SDK's own repository.
JOBS_AGENT = """\
var fs = require('fs');

//package deps
var jobsModule = require('..').jobs;
var cmdLineProcess = require('./lib/cmdline');
var isUndefined = require('../common/lib/is-undefined');

function showJobsError(err) {
   if (!isUndefined(err)) {
      console.error('jobs error', err);
   }
}

function jobsAgent(args) {
   const jobs = jobsModule({
      keyPath: args.privateKey,
      certPath: args.clientCert,
      caPath: args.caCert,
      clientId: args.clientId,
      region: args.region,
      keepalive: args.keepAlive,
      host: args.Host,
      thingName: args.thingName,
      debug: args.Debug
   });

   jobs.subscribeToJobs(args.thingName, 'reboot', function(err, job) {
      if (isUndefined(err)) {
         job.succeeded({ operation: job.operation, step: 'rebooting' }, showJobsError);
      }
   });

   jobs.startJobNotifications(args.thingName, function(err) {
      if (isUndefined(err)) {
         console.log('startJobNotifications completed for thing: ' + args.thingName);
      }
   });
}

module.exports = cmdLineProcess;
"""


def test_the_node_v1_jobs_agent_is_reported_not_skipped(tmp_path):
    # The SDK's jobs agent was no touch point at all: only `.device`/`.thingShadow`
    # counted as the SDK loaded with require('..').
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "jobs-agent.js").write_text(JOBS_AGENT, encoding="utf-8")
    outcome = patch(tmp_path, PatchOptions(hub=HUB))
    assert outcome.changed == {}
    points = {(p.line, p.kind): p for p in outcome.report.touch_points}
    for needle in ("jobs.subscribeToJobs(", "jobs.startJobNotifications("):
        assert points[_line(JOBS_AGENT, needle), "jobs"].verdict == "needs_human"
    client_id = points[_line(JOBS_AGENT, "clientId:"), "client_id"]
    assert client_id.verdict == "needs_human"
    assert "AWS IoT Jobs" in client_id.reason


# A program on the SDK by name that binds jobs by destructuring.
JOBS_DESTRUCTURED = """\
const { jobs } = require('aws-iot-device-sdk');

const agent = jobs({
  keyPath: 'private.pem.key',
  certPath: 'certificate.pem.crt',
  caPath: 'AmazonRootCA1.pem',
  clientId: 'porch-7',
  host: 'abc123-ats.iot.us-east-1.amazonaws.com',
});
agent.subscribeToJobs('porch-7', 'reboot', (err, job) => job.succeeded({}, () => {}));
"""


def test_node_v1_jobs_bound_by_destructuring_say_why_they_need_a_human(tmp_path):
    (tmp_path / "agent.js").write_text(JOBS_DESTRUCTURED, encoding="utf-8")
    outcome = patch(tmp_path, PatchOptions(hub=HUB))
    assert outcome.changed == {}
    endpoint = next(p for p in outcome.report.touch_points if p.kind == "endpoint")
    assert endpoint.verdict == "needs_human"
    assert "AWS IoT Jobs" in endpoint.reason


# A MicroPython 1.22+ AWS IoT program: since micropython/micropython-lib's umqtt.simple
# 1.4 (micropython/umqtt.simple/umqtt/simple.py) `ssl` is an ssl.SSLContext, which holds
# the device's certificate and key, and ssl_params is gone. Trimmed from the shape AWS IoT
# tutorials for the Pico W and ESP32 use.
UMQTT_SSL_CONTEXT = """\
import ssl
from umqtt.simple import MQTTClient

AWS_ENDPOINT = "abcdefgh123456-ats.iot.eu-central-1.amazonaws.com"
AWS_CLIENT_ID = "pico-w-7"
AWS_TOPIC = "esp32/pub"

CA_CERT_PATH = "/AmazonRootCA1.pem"
CLIENT_CERT_PATH = "/certificate.pem.crt"
PRIVATE_KEY_PATH = "/private.pem.key"


def connect_mqtt():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_cert_chain(CLIENT_CERT_PATH, PRIVATE_KEY_PATH)
    client = MQTTClient(client_id=AWS_CLIENT_ID, server=AWS_ENDPOINT, port=8883,
                        keepalive=60, ssl=ctx)
    client.connect()
    return client


client = connect_mqtt()
client.publish(AWS_TOPIC, b'{"temperature": 21}')
"""
# umqtt.simple 1.4's constructor and the part of connect() that uses `ssl`.
UMQTT_14_STUB = """\
class MQTTClient:
    def __init__(self, client_id, server, port=0, user=None, password=None, keepalive=0,
                 ssl=None):
        self.client_id, self.server, self.port, self.ssl = client_id, server, port, ssl
        self.user, self.pswd, self.keepalive = user, password, keepalive

    def set_callback(self, f):
        self.cb = f

    def connect(self, clean_session=True):
        if self.ssl:
            sock = self.ssl.wrap_socket(None, server_hostname=self.server)
        print("connect", self.server, self.port, self.client_id, self.user, sock)

    def publish(self, topic, msg, retain=False, qos=0):
        print("publish", topic)
"""
SSL_STUB = """\
PROTOCOL_TLS_CLIENT, CERT_REQUIRED = 16, 2


class SSLContext:
    def __init__(self, protocol):
        self.chain = None

    def load_cert_chain(self, certfile, keyfile):
        self.chain = (certfile, keyfile)

    def wrap_socket(self, sock, server_hostname=None):
        return "tls(%s, %s)" % (server_hostname, self.chain[0])
"""


def test_a_umqtt_ssl_context_keeps_the_devices_certificate(tmp_path):
    # `ssl=ctx` became `ssl=True`: umqtt.simple 1.4 then called True.wrap_socket() and
    # the context holding the device's certificate was dropped.
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "main.py").write_text(UMQTT_SSL_CONTEXT, encoding="utf-8")
    outcome = patch(repo, PatchOptions(hub=HUB), apply=True)
    assert outcome.report.files[0].stack == "micropython_umqtt"
    lib = tmp_path / "lib"
    (lib / "umqtt").mkdir(parents=True)
    (lib / "umqtt" / "__init__.py").write_text("", encoding="utf-8")
    (lib / "umqtt" / "simple.py").write_text(UMQTT_14_STUB, encoding="utf-8")
    (lib / "ssl.py").write_text(SSL_STUB, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(lib)}
    ran = subprocess.run(
        [sys.executable, "main.py"],
        check=False,
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
    )
    assert ran.returncode == 0, ran.stderr
    connect, publish = ran.stdout.splitlines()
    user = f"{HUB}/pico-w-7/?api-version=2021-04-12"
    assert connect == f"connect {HUB} 8883 pico-w-7 {user} tls({HUB}, /certificate.pem.crt)"
    assert publish.startswith("publish devices/pico-w-7/messages/events/")
    # the AWS root CA the context would load is still reported for a human
    root_ca = [p for p in outcome.report.touch_points if p.kind == "root_ca"]
    assert [p.verdict for p in root_ca] == ["needs_human"]


# zephyrproject-rtos/zephyr, samples/net/cloud/aws_iot_mqtt/src/main.c (trimmed): the
# client id is a const array spelled by a Kconfig value, the publish topic another Kconfig
# value passed as an argument, and AWS's root CA a TLS credential from creds/ca.c.
ZEPHYR_AWS_IOT = """\
#include <string.h>

#include <zephyr/net/socket.h>
#include <zephyr/net/mqtt.h>
#include <zephyr/net/tls_credentials.h>

#include "creds/creds.h"

static struct mqtt_client client_ctx;

static const char mqtt_client_name[] = CONFIG_AWS_THING_NAME;

#define TLS_TAG_AWS_CA_CERTIFICATE 2

static int setup_credentials(void)
{
\treturn tls_credential_add(TLS_TAG_AWS_CA_CERTIFICATE, TLS_CREDENTIAL_CA_CERTIFICATE, ca_cert,
\t\t\t\t  ca_cert_len);
}

static int publish_message(const char *topic, size_t topic_len, uint8_t *payload,
\t\t\t   size_t payload_len)
{
\tstruct mqtt_publish_param msg;

\tmsg.message.topic.topic.utf8 = (uint8_t *)topic;
\tmsg.message.topic.topic.size = topic_len;
\tmsg.message.payload.data = payload;
\tmsg.message.payload.len = payload_len;
\treturn mqtt_publish(&client_ctx, &msg);
}

static void aws_client_setup(void)
{
\tmqtt_client_init(&client_ctx);

\tclient_ctx.client_id.utf8 = (uint8_t *)mqtt_client_name;
\tclient_ctx.client_id.size = sizeof(mqtt_client_name) - 1;
\tclient_ctx.password = NULL;
\tclient_ctx.user_name = NULL;

\tclient_ctx.keepalive = CONFIG_MQTT_KEEPALIVE;

\tclient_ctx.transport.type = MQTT_TRANSPORT_SECURE;
\tclient_ctx.transport.tls.config.hostname = CONFIG_AWS_ENDPOINT;
}

int aws_publish(uint8_t *buffer, size_t payload_len)
{
\treturn publish_message(CONFIG_AWS_PUBLISH_TOPIC, strlen(CONFIG_AWS_PUBLISH_TOPIC), buffer,
\t\t\t       payload_len);
}

int aws_connect(void)
{
\tsetup_credentials();
\taws_client_setup();
\treturn mqtt_connect(&client_ctx);
}
"""
ZEPHYR_PRJ_CONF = """\
CONFIG_MQTT_LIB=y
CONFIG_MQTT_KEEPALIVE=60
CONFIG_AWS_ENDPOINT="a1b2c3d4e5f6g7-ats.iot.eu-west-1.amazonaws.com"
CONFIG_AWS_THING_NAME="zephyr_sample"
CONFIG_AWS_PUBLISH_TOPIC="zephyr_sample/data"
"""
ZEPHYR_TLS_STUB = """\
#pragma once
#define TLS_CREDENTIAL_CA_CERTIFICATE 1
static inline int tls_credential_add(int tag, int type, const void *cred, unsigned len)
{ (void)tag; (void)type; (void)cred; (void)len; return 0; }
"""
ZEPHYR_CREDS_STUB = """\
static const unsigned char ca_cert[] = "AmazonRootCA1";
static const unsigned int ca_cert_len = sizeof(ca_cert);
"""


def _zephyr_aws_iot(root: Path) -> Path:
    (root / "src" / "creds").mkdir(parents=True)
    (root / "src" / "main.c").write_text(ZEPHYR_AWS_IOT, encoding="utf-8")
    (root / "prj.conf").write_text(ZEPHYR_PRJ_CONF, encoding="utf-8")
    return root / "src" / "main.c"


@pytest.mark.skipif(GCC is None, reason="gcc is not installed")
def test_zephyrs_aws_iot_sample_sends_iothubs_user_name(tmp_path):
    # Its client id, a const array holding CONFIG_AWS_THING_NAME, was "computed at run
    # time": nothing was rewritten and the sample kept user_name = NULL.
    repo = tmp_path / "repo"
    source = _zephyr_aws_iot(repo)
    (repo / "src" / "creds" / "creds.h").write_text(ZEPHYR_CREDS_STUB, encoding="utf-8")
    outcome = patch(repo, PatchOptions(hub=HUB), apply=True)
    assert set(outcome.changed) == {"prj.conf", "src/main.c"}
    assert error_count(parse_c(source.read_bytes())) == 0
    stubs = tmp_path / "stubs" / "zephyr" / "net"
    stubs.mkdir(parents=True)
    (stubs / "tls_credentials.h").write_text(ZEPHYR_TLS_STUB, encoding="utf-8")
    # Zephyr's build turns prj.conf into autoconf.h; so does the test.
    values = [line.split("=", 1) for line in (repo / "prj.conf").read_text().splitlines()]
    autoconf = tmp_path / "autoconf.h"
    autoconf.write_text("".join(f"#define {k} {'1' if v == 'y' else v}\n" for k, v in values))
    probe = tmp_path / "probe.c"
    probe.write_text(
        f'#include "{source}"\n'
        'int main(void) { aws_connect(); aws_publish((uint8_t *)"{}", 2); return 0; }\n'
    )
    binary = tmp_path / "probe"
    flags = ["-std=gnu11", "-Wall", "-Werror", "-Wno-unused-function"]
    includes = ["-I", str(STUBS / "zephyr"), "-I", str(tmp_path / "stubs")]
    subprocess.run(
        [GCC, *flags, *includes, "-include", str(autoconf), "-o", str(binary), str(probe)],
        check=True,
    )
    ran = subprocess.run([str(binary)], capture_output=True, text=True, check=True)
    connect, _publish = ran.stdout.splitlines()
    user = f"{HUB}/zephyr_sample/?api-version=2021-04-12"
    assert connect == (
        f"connect host={HUB} client_id=zephyr_sample user={user} password=(none) keepalive=60"
    )
    assert patch(repo, PatchOptions(hub=HUB)).changed == {}  # patching twice: no change


def test_zephyrs_aws_iot_sample_reports_its_root_ca_and_kconfig_topic(tmp_path):
    # The CA credential (AWS's root) was no touch point, and the Kconfig topic was said
    # to be a shadow publish.
    _zephyr_aws_iot(tmp_path)
    points = {(p.line, p.kind): p for p in scan(tmp_path).touch_points if p.file == "src/main.c"}
    root_ca = points[_line(ZEPHYR_AWS_IOT, "TLS_CREDENTIAL_CA_CERTIFICATE"), "root_ca"]
    assert root_ca.verdict == "needs_human"
    assert "DigiCert Global Root G2" in root_ca.reason
    topic = points[_line(ZEPHYR_AWS_IOT, "return mqtt_publish("), "topic"]
    assert topic.verdict == "needs_human"
    assert "Kconfig" in topic.reason
    assert "shadow" not in topic.reason


# FreeRTOS/coreMQTT-Agent-Demos, source/configuration-files/demo_config.h and
# source/mqtt-agent-task.c (trimmed; the settings filled in). FreeRTOS's demos read
# democonfigCLIENT_USERNAME as the custom authorizer's user name: defined, it switches the
# demo to username/password (and a password is required).
AGENT_DEMO_CONFIG = """\
#ifndef DEMO_CONFIG_H
#define DEMO_CONFIG_H

#define democonfigCLIENT_IDENTIFIER              "agent-demo-4"

/**
 * @note Your AWS IoT Core endpoint can be found in the AWS IoT console under
 * Settings/Custom Endpoint, or using the describe-endpoint REST API.
 */
#define democonfigMQTT_BROKER_ENDPOINT           "a1b2c3d4e5f6g7-ats.iot.us-east-1.amazonaws.com"

#define democonfigROOT_CA_PEM                    "-----BEGIN CERTIFICATE-----\\n"
#define democonfigCLIENT_CERTIFICATE_PEM         "-----BEGIN CERTIFICATE-----\\n"

#define democonfigUSE_AWS_IOT_CORE_BROKER    ( 1 )

/**
 * @brief The username value for authenticating client to the MQTT broker when
 * username/password based client authentication is used.
 *
 * #define democonfigCLIENT_USERNAME    "...insert here..."
 */

#define democonfigOS_NAME                   "FreeRTOS"
#define democonfigOS_VERSION                "V10.4.3"
#define democonfigHARDWARE_PLATFORM_NAME    "WinSim"
#define democonfigMQTT_LIB                  "core-mqtt@1.0.0"
#define democonfigUSE_TLS                   1

#if defined( democonfigUSE_TLS ) && ( democonfigUSE_TLS == 1 )
/* If no username is defined, then a client certificate/key is required. */
    #ifndef democonfigCLIENT_USERNAME
        #ifndef democonfigCLIENT_CERTIFICATE_PEM
            #error "Please define client certificate(democonfigCLIENT_CERTIFICATE_PEM)."
        #endif
    #else
        #ifndef democonfigCLIENT_PASSWORD
            #error "Please define client password(democonfigCLIENT_PASSWORD) in demo_config.h."
        #endif
    #endif /* ifndef democonfigCLIENT_USERNAME */
#endif

#define AWS_IOT_METRICS_STRING                                 \\
    "?SDK=" democonfigOS_NAME "&Version=" democonfigOS_VERSION \\
    "&Platform=" democonfigHARDWARE_PLATFORM_NAME "&MQTTLib=" democonfigMQTT_LIB
#define AWS_IOT_METRICS_STRING_LENGTH    ( ( uint16_t ) ( sizeof( AWS_IOT_METRICS_STRING ) - 1 ) )

#ifdef democonfigCLIENT_USERNAME
    #define CLIENT_USERNAME_WITH_METRICS    democonfigCLIENT_USERNAME AWS_IOT_METRICS_STRING
#endif

#endif /* DEMO_CONFIG_H */
"""
AGENT_TASK = """\
#include <string.h>
#include "core_mqtt.h"
#include "demo_config.h"

#define mqttexampleKEEP_ALIVE_INTERVAL_SECONDS    ( 60U )

MQTTStatus_t prvMQTTConnect( MQTTContext_t * pxContext, bool xCleanSession )
{
    MQTTConnectInfo_t xConnectInfo;
    bool xSessionPresent = false;

    memset( &xConnectInfo, 0x00, sizeof( xConnectInfo ) );
    xConnectInfo.cleanSession = xCleanSession;
    xConnectInfo.pClientIdentifier = democonfigCLIENT_IDENTIFIER;
    xConnectInfo.clientIdentifierLength = ( uint16_t ) strlen( democonfigCLIENT_IDENTIFIER );
    xConnectInfo.keepAliveIntervalSec = mqttexampleKEEP_ALIVE_INTERVAL_SECONDS;

    /* Append metrics when connecting to the AWS IoT Core broker. */
    #ifdef democonfigUSE_AWS_IOT_CORE_BROKER
        #ifdef democonfigCLIENT_USERNAME
            xConnectInfo.pUserName = CLIENT_USERNAME_WITH_METRICS;
            xConnectInfo.userNameLength = ( uint16_t ) strlen( CLIENT_USERNAME_WITH_METRICS );
            xConnectInfo.pPassword = democonfigCLIENT_PASSWORD;
            xConnectInfo.passwordLength = ( uint16_t ) strlen( democonfigCLIENT_PASSWORD );
        #else
            xConnectInfo.pUserName = AWS_IOT_METRICS_STRING;
            xConnectInfo.userNameLength = AWS_IOT_METRICS_STRING_LENGTH;
            /* Password for authentication is not used. */
            xConnectInfo.pPassword = NULL;
            xConnectInfo.passwordLength = 0U;
        #endif
    #endif /* ifdef democonfigUSE_AWS_IOT_CORE_BROKER */

    return MQTT_Connect( pxContext, &xConnectInfo, NULL, 1000U, &xSessionPresent );
}
"""


@pytest.mark.skipif(GCC is None, reason="gcc is not installed")
def test_the_coremqtt_agent_demo_keeps_certificate_auth_with_iothubs_user_name(tmp_path):
    # The user name was added as democonfigCLIENT_USERNAME, the demos' custom-authorizer
    # setting: demo_config.h then stopped at "#error Please define client password".
    repo = tmp_path / "repo"
    (repo / "source").mkdir(parents=True)
    (repo / "source" / "demo_config.h").write_text(AGENT_DEMO_CONFIG, encoding="utf-8")
    task = repo / "source" / "mqtt-agent-task.c"
    task.write_text(AGENT_TASK, encoding="utf-8")
    patch(repo, PatchOptions(hub=HUB), apply=True)
    probe = tmp_path / "probe.c"
    probe.write_text(
        f'#include "{task}"\n#include <stdio.h>\n'
        "MQTTStatus_t MQTT_Connect(MQTTContext_t *c, const MQTTConnectInfo_t *i,"
        " const MQTTPublishInfo_t *w, uint32_t t, bool *s) {\n"
        '  printf("%.*s|%.*s|%s\\n", i->clientIdentifierLength, i->pClientIdentifier,'
        ' i->userNameLength, i->pUserName, i->pPassword ? "password" : "no password");\n'
        "  (void)c; (void)w; (void)t; (void)s; return MQTTSuccess;\n}\n"
        "int main(void) { MQTTContext_t context; return prvMQTTConnect(&context, true); }\n"
    )
    binary = tmp_path / "probe"
    flags = ["-std=gnu11", "-Wall", "-Werror", "-I", str(STUBS), "-I", str(repo / "source")]
    subprocess.run([GCC, *flags, "-o", str(binary), str(probe)], check=True)
    out = subprocess.run([str(binary)], capture_output=True, text=True, check=True).stdout
    user = f"{HUB}/agent-demo-4/?api-version=2021-04-12"
    assert out.splitlines() == [f"agent-demo-4|{user}|no password"]


# aws/aws-iot-device-sdk-python-v2, samples/utils/command_line_utils.py and
# samples/pubsub.py of 2022 (trimmed), copied into many device projects: the helper builds
# and returns the connection, the program uses it.
CMD_UTILS = """\
import argparse
from awsiot import mqtt_connection_builder


class CommandLineUtils:
    def __init__(self, description) -> None:
        self.parser = argparse.ArgumentParser(description=description)
        self.parsed_commands = None

    def get_args(self):
        self.parsed_commands = self.parser.parse_args()

    def get_command(self, command_name, default=None):
        return getattr(self.parsed_commands, command_name, default)

    def get_command_required(self, command_name, message=None):
        return getattr(self.parsed_commands, command_name)

    def build_direct_mqtt_connection(self, on_connection_interrupted, on_connection_resumed):
        mqtt_connection = mqtt_connection_builder.mtls_from_path(
            endpoint=self.get_command_required(self.m_cmd_endpoint),
            port=self.get_command_required("port"),
            cert_filepath=self.get_command_required(self.m_cmd_cert_file),
            pri_key_filepath=self.get_command_required(self.m_cmd_key_file),
            ca_filepath=self.get_command(self.m_cmd_ca_file),
            on_connection_interrupted=on_connection_interrupted,
            on_connection_resumed=on_connection_resumed,
            client_id=self.get_command_required("client_id"),
            clean_session=False,
            keep_alive_secs=30)
        return mqtt_connection

    def build_mqtt_connection(self, on_connection_interrupted, on_connection_resumed):
        return self.build_direct_mqtt_connection(on_connection_interrupted, on_connection_resumed)

    m_cmd_endpoint = "endpoint"
    m_cmd_ca_file = "ca_file"
    m_cmd_cert_file = "cert"
    m_cmd_key_file = "key"
    m_cmd_topic = "topic"
"""
CMD_UTILS_PUBSUB = """\
from awscrt import mqtt
import json
import command_line_utils

cmdUtils = command_line_utils.CommandLineUtils("PubSub - Send and recieve messages.")
cmdUtils.get_args()

def on_connection_interrupted(connection, error, **kwargs):
    print("Connection interrupted. error: {}".format(error))

def on_connection_resumed(connection, return_code, session_present, **kwargs):
    print("Connection resumed. return_code: {}".format(return_code))

if __name__ == '__main__':
    mqtt_connection = cmdUtils.build_mqtt_connection(
        on_connection_interrupted, on_connection_resumed)
    connect_future = mqtt_connection.connect()
    connect_future.result()
    print("Connected!")

    message_topic = cmdUtils.get_command(cmdUtils.m_cmd_topic)
    mqtt_connection.publish(
        topic=message_topic,
        payload=json.dumps({"hello": 1}),
        qos=mqtt.QoS.AT_LEAST_ONCE)
    mqtt_connection.disconnect().result()
"""


def test_a_connection_built_in_a_helper_module_is_refused_in_both_files(tmp_path):
    # command_line_utils.py became an IoTHubDeviceClient factory while pubsub.py kept
    # calling connect().result() on it; pubsub.py's QoS became an int, which awscrt's
    # publish cannot take, and its publish was reported "rewritten".
    (tmp_path / "command_line_utils.py").write_text(CMD_UTILS, encoding="utf-8")
    (tmp_path / "pubsub.py").write_text(CMD_UTILS_PUBSUB, encoding="utf-8")
    outcome = patch(tmp_path, PatchOptions(hub=HUB))
    assert outcome.changed == {}
    by_file = {f.file: f.touch_points for f in outcome.report.files}
    assert {p.verdict for points in by_file.values() for p in points} == {"needs_human"}
    assert any("returned to other code" in p.reason for p in by_file["command_line_utils.py"])
    publish = [p for p in by_file["pubsub.py"] if p.kind == "topic"]
    assert publish
    assert all("cmdUtils.build_mqtt_connection" in p.reason for p in publish)


# aws/aws-iot-device-sdk-embedded-C (v3), samples/linux/subscribe_publish_sample/
# subscribe_publish_sample.c (trimmed; the certificate paths from the command line): the
# v3 SDK on Linux with mbedTLS, built with make, where there is no ESP-IDF esp-mqtt.
V3_LINUX_SAMPLE = """\
#include <stdio.h>
#include <string.h>

#include "aws_iot_config.h"
#include "aws_iot_log.h"
#include "aws_iot_version.h"
#include "aws_iot_mqtt_client_interface.h"

static char HostAddress[255] = AWS_IOT_MQTT_HOST;
static uint32_t port = AWS_IOT_MQTT_PORT;

int main(int argc, char **argv) {
\tchar cPayload[100];
\tIoT_Error_t rc = FAILURE;
\tAWS_IoT_Client client;
\tIoT_Client_Init_Params mqttInitParams = iotClientInitParamsDefault;
\tIoT_Client_Connect_Params connectParams = iotClientConnectParamsDefault;
\tIoT_Publish_Message_Params paramsQOS0;

\tmqttInitParams.enableAutoReconnect = false; // We enable this later below
\tmqttInitParams.pHostURL = HostAddress;
\tmqttInitParams.port = port;
\tmqttInitParams.pRootCALocation = argv[1];
\tmqttInitParams.pDeviceCertLocation = argv[2];
\tmqttInitParams.pDevicePrivateKeyLocation = argv[3];
\tmqttInitParams.isSSLHostnameVerify = true;

\trc = aws_iot_mqtt_init(&client, &mqttInitParams);
\tif(SUCCESS != rc) {
\t\treturn rc;
\t}

\tconnectParams.keepAliveIntervalInSec = 600;
\tconnectParams.isCleanSession = true;
\tconnectParams.MQTTVersion = MQTT_3_1_1;
\tconnectParams.pClientID = "c-sdk-client-id";
\tconnectParams.clientIDLen = (uint16_t) strlen("c-sdk-client-id");

\trc = aws_iot_mqtt_connect(&client, &connectParams);
\tsprintf(cPayload, "%s : %d ", "hello from SDK", 0);
\tparamsQOS0.qos = QOS0;
\tparamsQOS0.payload = (void *) cPayload;
\tparamsQOS0.payloadLen = strlen(cPayload);
\treturn aws_iot_mqtt_publish(&client, "sdkTest/sub", 11, &paramsQOS0);
}
"""


def test_the_v3_sdk_on_linux_is_not_rewritten_onto_esp_idf(tmp_path):
    # It was rewritten onto ESP-IDF's esp-mqtt (esp_mqtt_client_config_t, FreeRTOS),
    # which a Linux build does not have.
    (tmp_path / "subscribe_publish_sample.c").write_text(V3_LINUX_SAMPLE, encoding="utf-8")
    (tmp_path / "Makefile").write_text("APP_NAME = subscribe_publish_sample\n", encoding="utf-8")
    outcome = patch(tmp_path, PatchOptions(hub=HUB))
    assert outcome.changed == {}
    points = outcome.report.touch_points
    assert points
    assert {p.verdict for p in points} == {"needs_human"}
    assert all("outside ESP-IDF" in p.reason for p in points if p.kind != "secret")


# A MicroPython ESP32 AWS IoT program in the shape Digi's and Espressif-based tutorials
# use (umqtt.simple 1.3's ssl_params, as in micropython/micropython-lib before 1.22): the
# endpoint constant is also TLS's server_hostname, which sets SNI and the name verified.
UMQTT_SERVER_HOSTNAME = """\
import ussl
from umqtt.simple import MQTTClient

MQTT_HOST = "a1b2c3d4e5f6g7-ats.iot.us-east-1.amazonaws.com"
CLIENT_ID = "esp32-tank-3"

with open("aws.crt", "rb") as f:
    cert = f.read()
with open("aws.key", "rb") as f:
    key = f.read()

ssl_params = {"key": key, "cert": cert, "server_hostname": MQTT_HOST,
              "cert_reqs": ussl.CERT_REQUIRED}
client = MQTTClient(CLIENT_ID, MQTT_HOST, port=8883, keepalive=60, ssl=True,
                    ssl_params=ssl_params)
client.connect()
client.publish(b"tank/level", b'{"level": 3}')
"""
UMQTT_13_STUB = """\
class MQTTClient:
    def __init__(self, client_id, server, port=0, user=None, password=None, keepalive=0,
                 ssl=False, ssl_params={}):
        self.client_id, self.server, self.ssl_params = client_id, server, ssl_params

    def set_callback(self, f):
        self.cb = f

    def connect(self, clean_session=True):
        print("connect", self.server, self.ssl_params.get("server_hostname"))

    def publish(self, topic, msg, retain=False, qos=0):
        print("publish", topic)
"""


def test_the_umqtt_tls_server_hostname_is_the_hubs(tmp_path):
    # The constant kept AWS's host, so TLS sent AWS's name (SNI) to IoT Hub and checked
    # IoT Hub's certificate against it, while the report said the endpoint was rewritten.
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "main.py").write_text(UMQTT_SERVER_HOSTNAME, encoding="utf-8")
    outcome = patch(repo, PatchOptions(hub=HUB), apply=True)
    endpoint = next(p for p in outcome.report.touch_points if p.kind == "endpoint")
    assert endpoint.verdict == "rewritten"
    lib = tmp_path / "lib"
    (lib / "umqtt").mkdir(parents=True)
    (lib / "umqtt" / "__init__.py").write_text("", encoding="utf-8")
    (lib / "umqtt" / "simple.py").write_text(UMQTT_13_STUB, encoding="utf-8")
    (lib / "ussl.py").write_text("CERT_REQUIRED = 2\n", encoding="utf-8")
    (repo / "aws.crt").write_bytes(b"cert")
    (repo / "aws.key").write_bytes(b"key")
    env = {**os.environ, "PYTHONPATH": str(lib)}
    ran = subprocess.run(
        [sys.executable, "main.py"],
        check=False,
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines()[0] == f"connect {HUB} {HUB}"


def test_a_keep_alive_setting_within_iothubs_limit_is_no_touch_point(tmp_path):
    # prj.conf's CONFIG_MQTT_KEEPALIVE=60 (and the mosquitto demo's `#define
    # MQTT_KEEP_ALIVE ( 60U )`) were reported as needing a human although IoT Hub takes them.
    _zephyr_aws_iot(tmp_path)
    (tmp_path / "jobs_demo_mosquitto.c").write_text(
        MOSQUITTO_JOBS.replace(
            '#include "jobs.h"\n', '#include "jobs.h"\n\n#define MQTT_KEEP_ALIVE ( 60U )\n'
        ),
        encoding="utf-8",
    )
    (tmp_path / "prj_long.conf").write_text(
        'CONFIG_MQTT_KEEPALIVE=3600\nCONFIG_AWS_ENDPOINT="a1-ats.iot.eu-west-1.amazonaws.com"\n',
        encoding="utf-8",
    )
    points = scan(tmp_path).touch_points
    keep_alive = {(p.file, p.line) for p in points if p.kind == "keep_alive"}
    assert ("prj.conf", 2) not in keep_alive
    assert ("jobs_demo_mosquitto.c", 5) not in keep_alive
    assert ("prj_long.conf", 1) in keep_alive


# aws/aws-iot-device-sdk-js-v2, samples/node/pub_sub/index.ts and samples/util/cli_args.js
# (trimmed): the sample takes its connection from the shared helper, whose require path
# counts from the compiled dist/ folder.
NODE_V2_PUB_SUB = """\
import { mqtt } from 'aws-iot-device-sdk-v2';
import { TextDecoder } from 'util';

type Args = { [index: string]: any };

const yargs = require('yargs');

// The relative path is '../../util/cli_args' from here, but the compiled javascript file
// gets put one level deeper inside the 'dist' folder
const common_args = require('../../../util/cli_args');

yargs.command('*', false, (yargs: any) => {
    common_args.add_direct_connection_establishment_arguments(yargs);
}, main).parse();

async function execute_session(connection: mqtt.MqttClientConnection, argv: Args) {
    const decoder = new TextDecoder('utf8');
    const on_publish = async (topic: string, payload: ArrayBuffer) => {
        console.log(decoder.decode(payload));
    }
    await connection.subscribe(argv.topic, mqtt.QoS.AtLeastOnce, on_publish);
    const json = JSON.stringify({ message: argv.message, sequence: 1 });
    await connection.publish(argv.topic, json, mqtt.QoS.AtLeastOnce);
}

async function main(argv: Args) {
    common_args.apply_sample_arguments(argv);
    const connection = common_args.build_connection_from_cli_args(argv);
    await connection.connect()
    await execute_session(connection, argv)
    await connection.disconnect()
}
"""
NODE_V2_CLI_ARGS = """\
const awscrt = require('aws-crt');
const iot = awscrt.iot;
const mqtt = awscrt.mqtt;

function apply_sample_arguments(argv) {
}

function build_direct_mqtt_connection_from_args(argv) {
    let config_builder = iot.AwsIotMqttConnectionConfigBuilder.new_mtls_builder_from_path(
        argv.cert, argv.key);

    if (argv.ca_file != null) {
        config_builder.with_certificate_authority_from_path(undefined, argv.ca_file);
    }

    config_builder.with_clean_session(false);
    config_builder.with_client_id(
        argv.client_id || "test-" + Math.floor(Math.random() * 100000000));
    config_builder.with_endpoint(argv.endpoint);
    const config = config_builder.build();

    const client = new mqtt.MqttClient();
    return client.new_connection(config);
}

function build_connection_from_cli_args(argv) {
    return build_direct_mqtt_connection_from_args(argv);
}

exports.apply_sample_arguments = apply_sample_arguments;
exports.build_connection_from_cli_args = build_connection_from_cli_args;
"""


def _node_v2_samples(root: Path) -> None:
    (root / "samples" / "node" / "pub_sub").mkdir(parents=True)
    (root / "samples" / "util").mkdir(parents=True)
    (root / "samples" / "node" / "pub_sub" / "index.ts").write_text(
        NODE_V2_PUB_SUB, encoding="utf-8"
    )
    (root / "samples" / "util" / "cli_args.js").write_text(NODE_V2_CLI_ARGS, encoding="utf-8")


def test_a_node_v2_sample_is_held_with_the_helper_its_connection_comes_from(tmp_path):
    # cli_args.js was refused (its client id is random) but index.ts was "rewritten": its
    # publishes, said to become sendEvent, went on through the helper's AWS connection.
    _node_v2_samples(tmp_path)
    outcome = patch(tmp_path, PatchOptions(hub=HUB))
    assert outcome.changed == {}
    sample = [p for p in outcome.report.touch_points if p.file.endswith("index.ts")]
    assert [p.kind for p in sample if p.kind == "topic"] == ["topic", "topic"]
    assert {p.verdict for p in sample} == {"needs_human"}
    assert all("samples/util/cli_args.js, which is not rewritten" in p.reason for p in sample)
    # With a device id for the helper both move, together.
    options = PatchOptions(hub=HUB, device_id=DeviceIdSource("literal", "sample-1"))
    assert set(patch(tmp_path, options).changed) == {
        "samples/node/pub_sub/index.ts",
        "samples/util/cli_args.js",
    }
