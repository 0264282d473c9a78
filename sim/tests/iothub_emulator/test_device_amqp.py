"""The device AMQP endpoint driven by Microsoft's unmodified Node.js device SDK
(azure-iot-device + azure-iot-device-amqp from tools/node-sdks), read back through the
Event Hubs-compatible endpoint with Microsoft's Python `EventHubConsumerClient`.

The Node SDK opens TLS without SASL, puts the device's (or module's) SAS token on `$cbs`
(audience url-encoded, reply expected with status 200) and attaches a sender link to
`/devices/{id}[/modules/{mid}]/messages/events`. Nothing in it is changed: it dials the
emulator through `GatewayHostName` and trusts the emulator's CA via NODE_EXTRA_CA_CERTS.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from azure.eventhub.aio import EventHubConsumerClient
from proton import Message, SSLDomain
from proton.utils import BlockingConnection, LinkDetached

from bridge_sim.iothub.amqp import frames
from bridge_sim.iothub.emulator import IotHubEmulator
from bridge_sim.iothub.eventhub import codec
from bridge_sim.iothub.faults import FaultRule
from bridge_sim.iothub.sas import generate_key, generate_token

pytestmark = pytest.mark.timeout(180)
NODE_SDKS = Path(__file__).resolve().parents[3] / "tools" / "node-sdks" / "node_modules"
WAIT = 60.0

SEND = """
const { Client, ModuleClient, Message } = require('azure-iot-device');
const { Amqp } = require('azure-iot-device-amqp');
const cs = process.env.CONNECTION_STRING;
const client = cs.includes('ModuleId=')
  ? ModuleClient.fromConnectionString(cs, Amqp)
  : Client.fromConnectionString(cs, Amqp);
(async () => {
  await client.open();
  for (let n = 0; n < 3; n++) {
    const message = new Message(JSON.stringify({ n }));
    message.messageId = `${process.env.PREFIX}-${n}`;
    message.contentType = 'application/json';
    message.contentEncoding = 'utf-8';
    message.properties.add('awsTopic', 'dt/node');
    message.properties.add('awsTopic1', 'dt');
    await client.sendEvent(message);
  }
  await client.close();
  console.log('sent');
})().catch((error) => {
  console.error(`FAILED ${error.constructor.name}: ${error.message}`);
  process.exit(1);
});
"""


@pytest.fixture
async def emulator(tmp_path):
    if shutil.which("node") is None or not (NODE_SDKS / "azure-iot-device-amqp").is_dir():
        pytest.skip("Node.js or tools/node-sdks is missing: run `make node-sdks`")
    async with IotHubEmulator(workdir=tmp_path / "hub", azurite=False) as running:
        yield running


def sas_keys() -> dict[str, Any]:
    return {
        "type": "sas",
        "symmetricKey": {"primaryKey": generate_key(), "secondaryKey": generate_key()},
    }


def connection_string(emulator: IotHubEmulator, device_id: str, module_id: str | None) -> str:
    identity = emulator.registry.find(device_id, module_id)
    assert identity is not None
    parts = [f"HostName={emulator.hostname}", f"DeviceId={device_id}"]
    if module_id:
        parts.append(f"ModuleId={module_id}")
    parts += [
        f"SharedAccessKey={identity.authentication.sas_keys[0]}",
        f"GatewayHostName={emulator.gateway_host}",
    ]
    return ";".join(parts)


async def run_node(emulator: IotHubEmulator, tmp_path: Path, cs: str, prefix: str) -> str:
    script = tmp_path / "send.js"
    script.write_text(SEND)
    process = await asyncio.create_subprocess_exec(
        "node",
        str(script),
        env={
            "PATH": os.environ.get("PATH", ""),
            "NODE_PATH": str(NODE_SDKS),
            "NODE_EXTRA_CA_CERTS": str(emulator.ca_path),
            "CONNECTION_STRING": cs,
            "PREFIX": prefix,
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(WAIT):
        out, err = await process.communicate()
    assert process.returncode is not None
    return (out + err).decode() if process.returncode else out.decode()


async def read_telemetry(emulator: IotHubEmulator, count: int) -> list[Any]:
    """`count` telemetry events, with Microsoft's consumer on every partition at once."""
    client = EventHubConsumerClient.from_connection_string(
        emulator.env()["IOTHUB_EVENTHUB_CONNECTION_STRING"], consumer_group="$Default"
    )
    events: list[Any] = []
    enough = asyncio.Event()

    async def on_event(_context: Any, event: Any) -> None:
        if event and event.system_properties.get(b"iothub-message-source") == b"Telemetry":
            events.append(event)
            if len(events) >= count:
                enough.set()

    task = asyncio.create_task(client.receive(on_event, starting_position="-1"))
    try:
        await asyncio.wait_for(enough.wait(), WAIT)
    finally:
        await client.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return events


@pytest.mark.parametrize("module_id", [None, "edge-mod"], ids=["device", "module"])
async def test_the_node_sdk_sends_over_amqp_and_event_hubs_reads_it_back(
    emulator, tmp_path, module_id
):
    emulator.registry.put_device("node-1", {"authentication": sas_keys()}, None)
    if module_id:
        emulator.registry.put_module("node-1", module_id, {"authentication": sas_keys()}, None)
    cs = connection_string(emulator, "node-1", module_id)
    output = await run_node(emulator, tmp_path, cs, "nd")
    assert output.strip() == "sent", output
    events = await read_telemetry(emulator, 3)
    assert [json.loads(e.body_as_str()) for e in events] == [{"n": 0}, {"n": 1}, {"n": 2}]
    for n, event in enumerate(events):
        system = event.system_properties
        assert system[b"message-id"] == f"nd-{n}".encode()
        assert event.content_type == "application/json"
        assert system[b"content-encoding"] == b"utf-8"
        assert system[b"iothub-connection-device-id"] == b"node-1"
        assert system.get(b"iothub-connection-module-id") == (
            module_id.encode() if module_id else None
        )
        auth = json.loads(system[b"iothub-connection-auth-method"])
        assert auth == {
            "scope": "module" if module_id else "device",
            "type": "sas",
            "issuer": "iothub",
            "acceptingIpFilterRule": None,
        }
        assert event.properties == {b"awsTopic": b"dt/node", b"awsTopic1": b"dt"}
    # The identity was reported connected while its link was up, and disconnected after.
    identity = emulator.registry.find("node-1", module_id)
    assert identity is not None
    assert identity.connection_state == "Disconnected"


async def test_the_node_sdk_is_refused_a_wrong_key_and_an_injected_cbs_fault(emulator, tmp_path):
    emulator.registry.put_device("node-2", {"authentication": sas_keys()}, None)
    cs = connection_string(emulator, "node-2", None)
    wrong = cs.replace(cs.split("SharedAccessKey=")[1].split(";")[0], generate_key())
    output = await run_node(emulator, tmp_path, wrong, "bad")
    assert "FAILED" in output, output
    assert "Unauthorized" in output, output
    emulator.faults.add(FaultRule(status=401, endpoint="amqp", route_prefix="cbs", count=1))
    output = await run_node(emulator, tmp_path, cs, "fault")
    assert "FAILED" in output, output
    # The fault is spent: the same program now gets through.
    output = await run_node(emulator, tmp_path, cs, "ok")
    assert output.strip() == "sent", output
    events = await read_telemetry(emulator, 3)
    assert [e.system_properties[b"message-id"] for e in events] == [b"ok-0", b"ok-1", b"ok-2"]


def _plain_send(emulator: IotHubEmulator, user: str, token: str, address: str) -> None:
    """SASL PLAIN login (`{id}@sas.{hub}`, SAS token as password), then one message."""
    domain = SSLDomain(SSLDomain.MODE_CLIENT)
    domain.set_trusted_ca_db(str(emulator.ca_path))
    domain.set_peer_authentication(SSLDomain.VERIFY_PEER_NAME)
    connection = BlockingConnection(
        f"amqps://{emulator.gateway_host}:5671",
        ssl_domain=domain,
        allowed_mechs="PLAIN",
        user=user,
        password=token,
        virtual_host=emulator.hostname,
        timeout=WAIT,
    )
    try:
        sender = connection.create_sender(address)
        message = Message(body=b'{"plain": true}', id="plain-1")
        message.inferred = True
        sender.send(message)  # returns once settled; raises SendException if rejected
    finally:
        connection.close()


async def test_sasl_plain_authorizes_the_identity_it_names(emulator):
    emulator.registry.put_device("plain-1", {"authentication": sas_keys()}, None)
    identity = emulator.registry.find("plain-1")
    assert identity is not None
    token = generate_token(
        f"{emulator.hostname}/devices/plain-1", identity.authentication.sas_keys[0]
    )
    await asyncio.to_thread(
        _plain_send, emulator, "plain-1@sas.myhub", token, "/devices/plain-1/messages/events"
    )
    log = emulator.events
    stored = log.read(log.partition_for("plain-1"), 0, 10**6)
    [event] = [e for e in stored if e.device_id == "plain-1" and e.message_source == "Telemetry"]
    assert (event.message_id, event.body) == ("plain-1", b'{"plain": true}')
    # The login authorizes that identity only: another device's link is refused.
    emulator.registry.put_device("plain-2", {"authentication": sas_keys()}, None)
    with pytest.raises(LinkDetached, match="unauthorized-access"):
        await asyncio.to_thread(
            _plain_send, emulator, "plain-1@sas.myhub", token, "/devices/plain-2/messages/events"
        )


def _decoded(frame: bytes) -> tuple[int, int, list[Any]]:
    channel = int.from_bytes(frame[6:8], "big")
    code, fields = codec.decode_frame_body(frame[8:])
    return channel, code, fields


def test_hand_encoded_frames_say_what_the_codec_says():
    # Same performative, same field values (the encodings of small numbers may differ).
    disposition = codec.DispositionFrame(
        role=True, first=70000, last=70000, settled=True, state=codec.Accepted(), batchable=False
    )
    assert _decoded(frames.accepted_disposition(3, 70000)) == _decoded(
        codec.encode_frame(3, disposition)
    )
    flow = {
        "next_incoming_id": 5,
        "incoming_window": 2**31 - 1,
        "next_outgoing_id": 0,
        "outgoing_window": 2**31 - 1,
        "handle": 7,
        "delivery_count": 300,
        "link_credit": 100,
    }
    expected = codec.FlowFrame(**flow, available=None, drain=False, echo=False, properties=None)
    assert _decoded(frames.link_flow(1, **flow)) == _decoded(codec.encode_frame(1, expected))
