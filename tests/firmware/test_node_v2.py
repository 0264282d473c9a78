"""The aws-iot-device-sdk-v2 recipe refuses what it cannot map, with the reason."""

from __future__ import annotations

import pytest

from bridge.firmware import DeviceIdSource, PatchOptions, scan
from bridge.firmware.recipes import PatchRefusedError
from firmware_patches.node_aws_iot_device_sdk_v2 import RECIPE

HUB = "myhub.azure-devices.net"
MQTT5 = """const { mqtt5, iot } = require('aws-iot-device-sdk-v2');
const builder = iot.AwsIotMqtt5ClientConfigBuilder.newDirectMqttBuilderWithMtlsFromPath(
  'a1-ats.iot.us-east-1.amazonaws.com', 'cert.pem', 'key.pem');
const client = new mqtt5.Mqtt5Client(builder.build());
"""
WEBSOCKET = """import { mqtt, iot, auth } from 'aws-iot-device-sdk-v2';
const config = iot.AwsIotMqttConnectionConfigBuilder.new_with_websockets({ region: 'us-east-1' })
  .with_endpoint('a1-ats.iot.us-east-1.amazonaws.com').with_client_id('kiosk-1').build();
"""
UNKNOWN = """const { mqtt, iot, iotshadow } = require('aws-iot-device-sdk-v2');
const config = iot.AwsIotMqttConnectionConfigBuilder.new_mtls_builder_from_path('c', 'k')
  .with_endpoint('a1-ats.iot.us-east-1.amazonaws.com').with_client_id('x')
  .with_username('?SDK=NodeJSv2&Version=1.19').build();
"""
RANDOM = """const { mqtt, iot } = require('aws-iot-device-sdk-v2');
const id = 'sensor-' + Math.floor(Math.random() * 1000);
const config = iot.AwsIotMqttConnectionConfigBuilder.new_mtls_builder_from_path('c', 'k')
  .with_endpoint('a1-ats.iot.us-east-1.amazonaws.com').with_client_id(id).build();
"""


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        (MQTT5, "MQTT 5"),
        (WEBSOCKET, "SigV4 websocket"),
        (RANDOM, "the client id is random"),
        (UNKNOWN, "calls the adapter does not answer: with_username"),
    ],
)
def test_unmappable_programs_are_refused_with_the_reason(source, reason):
    with pytest.raises(PatchRefusedError, match=reason):
        RECIPE.patch("app.js", source, PatchOptions(hub=HUB))


def test_a_random_client_id_is_fine_once_the_device_id_has_a_source():
    options = PatchOptions(hub=HUB, device_id=DeviceIdSource.parse("env:DEVICE_ID"))
    patched = RECIPE.patch("app.js", RANDOM, options)
    assert patched is not None
    assert ".with_client_id(process.env.DEVICE_ID)" in patched
    assert ".with_endpoint(IOTHUB_HOST)" in patched
    # Business logic stays: the random id is still computed, just no longer used.
    assert "const id = 'sensor-' + Math.floor(Math.random() * 1000);" in patched


def test_refused_programs_are_reported_as_needing_a_human(tmp_path):
    (tmp_path / "app.js").write_text(MQTT5)
    points = scan(tmp_path).touch_points
    assert points
    assert {p.verdict for p in points} == {"needs_human"}
    assert all("MQTT 5" in p.reason for p in points)


def test_v1_programs_stay_with_the_v1_recipe(tmp_path):
    (tmp_path / "v1.js").write_text(
        "// ported from the aws-iot-device-sdk-js-v2 docs one day\n"
        "const awsIot = require('aws-iot-device-sdk');\n"
        "const d = awsIot.device({ host: 'a1-ats.iot.us-east-1.amazonaws.com', clientId: 'x' });\n"
    )
    (tmp_path / "v2.js").write_text(RANDOM)
    stacks = {f.file: f.stack for f in scan(tmp_path).files}
    assert stacks == {"v1.js": "node_aws_iot_device_sdk", "v2.js": "node_aws_iot_device_sdk_v2"}
