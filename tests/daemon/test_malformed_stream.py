"""The daemon under a stream of bad messages on the AWS topics it subscribes to.

Malformed, truncated, oversized and wrongly typed messages are published on the stand-in's
broker (its plain loopback listener, where the stand-in's own glue publishes AWS's events)
between real changes made through boto3. The daemon must keep running, dead-letter each
bad message once with its reason (table and `bridge_dead_letters_total`), and mirror every
real change.
"""

import asyncio
import contextlib
import json

import aiomqtt

from bridge.config import CloudSettings
from bridge.core.store import open_store
from bridge.daemon.app import RunOptions, run_daemon
from bridge.metrics import Metrics
from tests.daemon.parity import aws_clients
from tests.daemon.test_run import bridge_settings, until_parity

_DOCS = "$aws/things/{}/shadow/update/documents"
_VALID_DOC = json.dumps(
    {"current": {"version": 3, "state": {"desired": {"a": 1}}}, "timestamp": 1}
).encode()

# (topic, payload, the reason the dead letter must give)
BAD = [
    (_DOCS.format("mal-ghost"), b"{not json", "payload is not JSON"),
    (_DOCS.format("mal-ghost"), _VALID_DOC[: len(_VALID_DOC) // 2], "payload is not JSON"),
    (_DOCS.format("mal-ghost"), b"\xff\xfe\x00binary", "payload is not JSON"),
    (_DOCS.format("mal-ghost"), b"[" * 50_000, "payload is not JSON"),
    (_DOCS.format("mal-ghost"), b'{"current": {"version": NaN}}', "payload is not JSON"),
    (_DOCS.format("mal-ghost"), b"[" + b"0," * 60_000 + b"0]", "payload is not a JSON object"),
    (_DOCS.format("mal-ghost"), b'{"current": {"version": "7"}}', "'version' is not an integer"),
    (
        _DOCS.format("mal-ghost"),
        b'{"current": {"version": 2, "state": {"desired": [1, 2]}}}',
        "'current.state.desired' is not an object",
    ),
    (_DOCS.format("mal-ghost"), b'{"previous": {}}', "documents message without 'current'"),
    ("$aws/events/thing/mal-ghost/updated", b'{"thingName": 5}', "the thing name"),
    (
        "$aws/events/thing/mal-ghost/updated",
        b'{"versionNumber": 2, "attributes": {"k": 1}}',
        "'attributes' is not a map of strings",
    ),
    (
        "$aws/events/thingGroupMembership/thingGroup/g/thing",
        b'{"operation": "ADDED"}',
        "unexpected membership topic",
    ),
]


async def _publish_bad(host_port: str, messages: list[tuple[str, bytes, str]]) -> None:
    host, _, port = host_port.rpartition(":")
    async with aiomqtt.Client(hostname=host, port=int(port), identifier="malformed") as mqtt:
        for topic, payload, _reason in messages:
            await mqtt.publish(topic, payload, qos=1)


async def _until(predicate, what: str, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


async def test_bad_messages_are_dead_lettered_and_good_ones_applied(stack, tmp_path) -> None:
    env = stack.env()
    plain = env.pop("SIM_AWS_MQTT_PLAIN")
    iot, data = aws_clients(env)
    iot.create_thing(thingName="mal-1", attributePayload={"attributes": {"site": "a"}})
    settings = bridge_settings(tmp_path)
    metrics = Metrics.create()
    daemon = asyncio.create_task(
        run_daemon(CloudSettings(**env), settings, RunOptions(), metrics=metrics)
    )
    try:
        await until_parity(env, "mal-")
        # Bad messages in three bursts, with real changes before, between and after them.
        for burst, start in enumerate(range(0, len(BAD), 4)):
            iot.create_thing(thingName=f"mal-new-{burst}")
            await _publish_bad(plain, BAD[start : start + 4])
            data.update_thing_shadow(
                thingName="mal-1",
                payload=json.dumps({"state": {"desired": {"step": burst}}}).encode(),
            )
            iot.update_thing(
                thingName="mal-1", attributePayload={"attributes": {"burst": str(burst)}}
            )
        await until_parity(env, "mal-")

        def dead() -> float:
            sample = metrics.registry.get_sample_value("bridge_dead_letters_total", {"side": "aws"})
            return sample or 0.0

        async def all_counted() -> bool:
            return dead() >= len(BAD)

        await _until(all_counted, "every bad message in bridge_dead_letters_total")
        assert dead() == len(BAD)
        assert not daemon.done(), "the daemon stopped"
        async with open_store(settings.store.dsn) as store:
            letters = await store.dead_letters(100)
        assert len(letters) == len(BAD)
        assert {letter.source for letter in letters} == {"aws"}
        unmatched = [(letter.payload["topic"], letter.reason) for letter in letters]
        for topic, _payload, reason in BAD:
            match = next((m for m in unmatched if m[0] == topic and reason in m[1]), None)
            assert match is not None, (topic, reason, unmatched)
            unmatched.remove(match)
    finally:
        daemon.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await daemon
