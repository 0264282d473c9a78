"""Microsoft's Node device SDK in its samples' shape: MQTT over WebSockets; over AMQP
C2D, twins and direct methods.

One program does what simple_sample_device.js, simple_sample_device_twin.js and
device_method.js do with azure-iot-device + azure-iot-device-mqtt (`Mqtt`, and `MqttWs`,
which dials `wss://<GatewayHostName>:443/$iothub/websocket`): C2D messages completed,
telemetry with properties, the twin read, a reported patch, desired patches, a direct method.
The SDK is unmodified; it trusts the emulator's CA through NODE_EXTRA_CA_CERTS.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest
from azure.iot.hub import IoTHubRegistryManager
from azure.iot.hub.models import CloudToDeviceMethod
from msrest.exceptions import HttpOperationError

from bridge_sim.iothub.emulator import IotHubEmulator
from bridge_sim.iothub.mqtt.topics import DESIRED_FILTER, METHODS_FILTER, c2d_filter
from iothub_emulator.test_device_amqp import NODE_SDKS, connection_string, sas_keys
from iothub_emulator.test_device_harness import needs_port_443

pytestmark = pytest.mark.timeout(120)
WAIT = 30.0

SAMPLE = """
const { Client, Message } = require('azure-iot-device');
const { Mqtt, MqttWs } = require('azure-iot-device-mqtt');
const client = Client.fromConnectionString(
  process.env.CONNECTION_STRING, process.env.TRANSPORT === 'MqttWs' ? MqttWs : Mqtt);
const say = (...fields) => console.log(JSON.stringify(fields));
client.on('error', (err) => say('error', err.message));
client.on('message', (msg) => {
  say('c2d', msg.messageId, msg.data.toString(), msg.properties.getValue('kind'));
  client.complete(msg, (err) => say('completed', err ? err.message : null));
});
client.onDeviceMethod('reboot', (request, response) => {
  response.send(200, { delay: request.payload.delay }, (err) => say('responded', !err));
});
client.open((err) => {
  if (err) { say('open failed', err.message); process.exit(1); }
  const message = new Message(JSON.stringify({ temperature: 21 }));
  message.messageId = 'node-1';
  message.contentType = 'application/json';
  message.contentEncoding = 'utf-8';
  message.properties.add('temperatureAlert', 'false');
  client.sendEvent(message, (err, result) => {
    say('sent', err ? err.message : result.constructor.name);
    client.getTwin((err, twin) => {
      if (err) { say('twin failed', err.message); process.exit(1); }
      twin.on('properties.desired', (delta) => say('desired', delta));
      twin.properties.reported.update({ firmware: '1.2' }, (err) => {
        say('reported', err ? err.message : twin.properties.reported.firmware);
      });
    });
  });
});
process.stdin.on('data', () => client.close(() => { say('closed'); process.exit(0); }));
"""


class NodeDevice:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[list[Any]] = []

    async def expect(self, first: str) -> list[Any]:
        """The next line the program prints whose first field is `first`."""
        assert self.process.stdout is not None
        async with asyncio.timeout(WAIT):
            while True:
                for line in self.lines:
                    if line[0] == first:
                        self.lines.remove(line)
                        return line
                raw = await self.process.stdout.readline()
                assert raw, f"the program ended before printing {first!r}: {self.lines}"
                self.lines.append(json.loads(raw))


async def eventually(predicate: Any) -> None:
    async with asyncio.timeout(WAIT):
        while not predicate():
            await asyncio.sleep(0.02)


@needs_port_443
async def test_the_node_samples_run_over_mqtt_websockets(tmp_path: Path) -> None:
    # The same program with `Mqtt` worked before WebSockets were served (checked by hand);
    # `MqttWs` is what real IoT Hub also accepts on 443.
    script = tmp_path / "sample.js"
    script.write_text(SAMPLE)
    async with IotHubEmulator(workdir=tmp_path / "hub", azurite=False) as hub:
        assert hub.devices is not None
        hub.registry.put_device("n1", {"authentication": sas_keys()}, None)
        process = await asyncio.create_subprocess_exec(
            "node",
            str(script),
            env={
                "PATH": os.environ.get("PATH", ""),
                "NODE_PATH": str(NODE_SDKS),
                "NODE_EXTRA_CA_CERTS": str(hub.ca_path),
                "CONNECTION_STRING": connection_string(hub, "n1", None),
                "TRANSPORT": "MqttWs",
            },
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        device = NodeDevice(process)
        try:
            assert await device.expect("sent") == ["sent", "MessageEnqueued"]
            assert await device.expect("reported") == ["reported", "1.2"]
            connection = hub.devices.connection("n1")
            filters = {DESIRED_FILTER, METHODS_FILTER, c2d_filter("n1")}
            await eventually(lambda: connection is not None and filters <= connection.subscriptions)
            hub.registry.update_twin("n1", {"properties": {"desired": {"interval": 7}}}, None)
            while (line := await device.expect("desired"))[1]["$version"] < 2:
                pass
            assert line == ["desired", {"interval": 7, "$version": 2}]
            message_id = await hub.devices.send_c2d("n1", b"hello", {"kind": "cmd"})
            assert await device.expect("c2d") == ["c2d", message_id, "hello", "cmd"]
            assert await device.expect("completed") == ["completed", None]
            request = {"methodName": "reboot", "payload": {"delay": 3}}
            assert await hub.devices.invoke_method("n1", None, request) == (200, {"delay": 3})
            assert await device.expect("responded") == ["responded", True]
            assert process.stdin is not None
            process.stdin.write(b"close\n")
            assert await device.expect("closed") == ["closed"]
        finally:
            if process.returncode is None:
                process.kill()
            await process.wait()
        assert not [line for line in device.lines if line[0] == "error"]
        [event] = [
            e
            for e in hub.events.read(hub.events.partition_for("n1"), 0, 100)
            if e.message_source == "Telemetry"
        ]
        assert (event.body, event.message_id) == (b'{"temperature":21}', "node-1")
        assert event.properties == {"temperatureAlert": "false"}
        assert hub.registry.twin("n1")["properties"]["reported"]["firmware"] == "1.2"


SIMPLE_AMQP = """
const { Client, Message } = require('azure-iot-device');
const { Amqp } = require('azure-iot-device-amqp');
const client = Client.fromConnectionString(process.env.CONNECTION_STRING, Amqp);
const say = (...fields) => console.log(JSON.stringify(fields));
client.on('error', (err) => say('error', err.message));
client.on('message', (msg) => {
  say('c2d', msg.messageId, msg.data.toString(), msg.properties.getValue('kind'));
  client.complete(msg, (err, res) => say('completed', err ? err.message : res.constructor.name));
});
client.open((err) => {
  if (err) { say('open failed', err.message); process.exit(1); }
  const message = new Message(JSON.stringify({ temperature: 21 }));
  message.properties.add('temperatureAlert', 'false');
  client.sendEvent(message, (err, res) => say('sent', err ? err.message : res.constructor.name));
});
process.stdin.on('data', () => client.close(() => { say('closed'); process.exit(0); }));
"""


async def test_the_simple_sample_over_amqp_receives_c2d_and_sends(tmp_path: Path) -> None:
    # simple_sample_device.js with `Amqp`: a 'message' listener makes the SDK attach a
    # receiver link from /devices/{id}/messages/devicebound when it opens. IoT Hub grants
    # it; refused, the SDK tore the connection down and even sendEvent failed.
    script = tmp_path / "simple.js"
    script.write_text(SIMPLE_AMQP)
    async with IotHubEmulator(workdir=tmp_path / "hub", azurite=False) as hub:
        assert hub.amqp_devices is not None
        hub.registry.put_device("n1", {"authentication": sas_keys()}, None)
        process = await asyncio.create_subprocess_exec(
            "node",
            str(script),
            env={
                "PATH": os.environ.get("PATH", ""),
                "NODE_PATH": str(NODE_SDKS),
                "NODE_EXTRA_CA_CERTS": str(hub.ca_path),
                "CONNECTION_STRING": connection_string(hub, "n1", None),
            },
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        device = NodeDevice(process)
        try:
            assert await device.expect("sent") == ["sent", "MessageEnqueued"]
            amqp_devices = hub.amqp_devices
            await eventually(lambda: amqp_devices.c2d_ready("n1"))
            message_id = await hub.send_c2d("n1", b"hello", {"kind": "cmd"})
            assert await device.expect("c2d") == ["c2d", message_id, "hello", "cmd"]
            assert await device.expect("completed") == ["completed", "MessageCompleted"]
            assert process.stdin is not None
            process.stdin.write(b"close\n")
            assert await device.expect("closed") == ["closed"]
        finally:
            if process.returncode is None:
                process.kill()
            await process.wait()
        assert not [line for line in device.lines if line[0] == "error"]
        events = hub.events.read(hub.events.partition_for("n1"), 0, 100)
        [event] = [e for e in events if e.message_source == "Telemetry"]
        assert event.properties == {"temperatureAlert": "false"}
        assert json.loads(event.extra_annotations["iothub-connection-auth-method"])["type"] == "sas"


TWIN_AMQP = """
const { Client } = require('azure-iot-device');
const { Amqp } = require('azure-iot-device-amqp');
const client = Client.fromConnectionString(process.env.CONNECTION_STRING, Amqp);
const say = (...fields) => console.log(JSON.stringify(fields));
client.on('error', (err) => say('error', err.message));
client.open((err) => {
  if (err) { say('open failed', err.message); process.exit(1); }
  client.getTwin((err, twin) => {
    if (err) { say('twin failed', err.message); process.exit(1); }
    say('twin', twin.properties.desired.fw, twin.properties.reported.$version);
    twin.on('properties.desired', (delta) => say('desired', delta));
    twin.properties.reported.update({ firmware: '1.2' }, (err) => {
      say('reported', err ? err.message : twin.properties.reported.firmware);
    });
  });
});
process.stdin.on('data', () => client.close(() => { say('closed'); process.exit(0); }));
"""


async def test_the_twin_sample_over_amqp_reads_patches_and_gets_desired_updates(
    tmp_path: Path,
) -> None:
    # simple_sample_device_twin.js with `Amqp`: the SDK pairs a sender and a receiver link
    # on /devices/{id}/twin and sends GET, PATCH /properties/reported and
    # PUT /notifications/twin/properties/desired (operation and resource annotations, a
    # correlation id), expecting answers with a `status` annotation on the receiver
    # (amqp_twin_client.js). The emulator refused the links and getTwin failed.
    script = tmp_path / "twin.js"
    script.write_text(TWIN_AMQP)
    async with IotHubEmulator(workdir=tmp_path / "hub", azurite=False) as hub:
        hub.registry.put_device("n1", {"authentication": sas_keys()}, None)
        hub.registry.update_twin("n1", {"properties": {"desired": {"fw": "1.1"}}}, None)
        process = await asyncio.create_subprocess_exec(
            "node",
            str(script),
            env={
                "PATH": os.environ.get("PATH", ""),
                "NODE_PATH": str(NODE_SDKS),
                "NODE_EXTRA_CA_CERTS": str(hub.ca_path),
                "CONNECTION_STRING": connection_string(hub, "n1", None),
            },
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        device = NodeDevice(process)
        try:
            assert await device.expect("twin") == ["twin", "1.1", 1]
            assert await device.expect("reported") == ["reported", "1.2"]
            # The SDK hands over the desired section it read when it subscribes.
            assert await device.expect("desired") == ["desired", {"fw": "1.1", "$version": 2}]
            amqp_devices = hub.amqp_devices
            assert amqp_devices is not None
            await eventually(lambda: amqp_devices.desired_subscribed("n1"))
            hub.registry.update_twin("n1", {"properties": {"desired": {"interval": 7}}}, None)
            assert await device.expect("desired") == ["desired", {"interval": 7, "$version": 3}]
            assert process.stdin is not None
            process.stdin.write(b"close\n")
            assert await device.expect("closed") == ["closed"]
        finally:
            if process.returncode is None:
                process.kill()
            await process.wait()
        assert not [line for line in device.lines if line[0] == "error"]
        reported = hub.registry.twin("n1")["properties"]["reported"]
        assert (reported["firmware"], reported["$version"]) == ("1.2", 2)


METHOD_AMQP = """
const { Client } = require('azure-iot-device');
const { Amqp } = require('azure-iot-device-amqp');
const client = Client.fromConnectionString(process.env.CONNECTION_STRING, Amqp);
const say = (...fields) => console.log(JSON.stringify(fields));
client.on('error', (err) => say('error', err.message));
client.open((err) => {
  if (err) { say('open failed', err.message); process.exit(1); }
  client.onDeviceMethod('reboot', (request, response) => {
    say('method', request.methodName, request.payload);
    response.send(200, { delay: request.payload.delay }, (err) => say('responded', !err));
  });
});
process.stdin.on('data', () => client.close(() => { say('closed'); process.exit(0); }));
"""


async def test_the_device_method_sample_over_amqp_answers_the_service_sdk(
    tmp_path: Path,
) -> None:
    # device_method.js with `Amqp`: onDeviceMethod attaches a sender and a receiver link on
    # /devices/{id}/methods/devicebound; calls arrive with the `IoThub-methodname`
    # application property and a correlation id, replies go back with `IoThub-status`
    # (amqp_device_method_client.js). The emulator refused the links; a call got 404.
    script = tmp_path / "method.js"
    script.write_text(METHOD_AMQP)
    async with IotHubEmulator(workdir=tmp_path / "hub", azurite=False) as hub:
        hub.registry.put_device("n1", {"authentication": sas_keys()}, None)
        manager = IoTHubRegistryManager.from_connection_string(
            hub.env()["IOTHUB_CONNECTION_STRING"]
        )
        manager.protocol.config.connection.verify = str(hub.ca_path)
        process = await asyncio.create_subprocess_exec(
            "node",
            str(script),
            env={
                "PATH": os.environ.get("PATH", ""),
                "NODE_PATH": str(NODE_SDKS),
                "NODE_EXTRA_CA_CERTS": str(hub.ca_path),
                "CONNECTION_STRING": connection_string(hub, "n1", None),
            },
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        device = NodeDevice(process)
        try:
            call = CloudToDeviceMethod(
                method_name="reboot", payload={"delay": 3}, response_timeout_in_seconds=5
            )
            # 404 DeviceNotOnline until the SDK has its method links attached.
            async with asyncio.timeout(WAIT):
                while True:
                    try:
                        result = await asyncio.to_thread(manager.invoke_device_method, "n1", call)
                        break
                    except HttpOperationError as error:
                        if error.response.status_code != 404:
                            raise
                        await asyncio.sleep(0.05)
            assert (result.status, result.payload) == (200, {"delay": 3})
            assert await device.expect("method") == ["method", "reboot", {"delay": 3}]
            assert await device.expect("responded") == ["responded", True]
            assert process.stdin is not None
            process.stdin.write(b"close\n")
            assert await device.expect("closed") == ["closed"]
        finally:
            if process.returncode is None:
                process.kill()
            await process.wait()
        assert not [line for line in device.lines if line[0] == "error"]
