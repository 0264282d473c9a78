"""Where the stand-in once differed from AWS IoT Core as Amazon's own SDKs see it.

Each test drives the unmodified SDK (awsiotsdk's MQTT 3.1.1 connection as its samples
build it, boto3's iot, iot-data and iot-jobs-data clients) against the stand-in.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import pytest
from awscrt import mqtt, mqtt_request_response
from awsiot import V2ServiceException, iotjobs, iotshadow, mqtt_connection_builder

from bridge_sim.aws.standin import AwsStandIn
from tests.aws_devices import TIMEOUT, Inbox

REGION = "eu-west-1"
QOS1 = mqtt.QoS.AT_LEAST_ONCE


def sample_policy(region: str, account: str) -> str:
    """The policy AWS's pubsub sample asks for: its client id, `test/topic`, own shadows."""
    arn = f"arn:aws:iot:{region}:{account}"
    thing = "${iot:Connection.Thing.ThingName}"
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{arn}:client/{thing}"},
                {
                    "Effect": "Allow",
                    "Action": ["iot:Publish", "iot:Receive"],
                    "Resource": [f"{arn}:topic/test/topic", f"{arn}:topic/$aws/things/{thing}/*"],
                },
                {
                    "Effect": "Allow",
                    "Action": ["iot:Publish", "iot:RetainPublish"],
                    "Resource": f"{arn}:topic/test/retained",
                },
                {
                    "Effect": "Allow",
                    "Action": "iot:Subscribe",
                    "Resource": [
                        f"{arn}:topicfilter/test/topic",
                        f"{arn}:topicfilter/$aws/things/{thing}/*",
                    ],
                },
            ],
        }
    )


@pytest.fixture
async def aws(tmp_path: Path) -> AsyncIterator[AwsStandIn]:
    async with AwsStandIn(workdir=tmp_path / "aws", region=REGION) as standin:
        yield standin


def client(aws: AwsStandIn, service: str) -> Any:
    env = aws.env()
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name=env["AWS_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        config=botocore.config.Config(retries={"max_attempts": 1}),
    )


class SampleDevice:
    """A thing connected the way the SDK's samples connect: mtls_from_path, MQTT 3.1.1."""

    def __init__(self, aws: AwsStandIn, name: str, tmp: Path) -> None:
        iot = client(aws, "iot")
        iot.create_thing(thingName=name)
        cert = iot.create_keys_and_certificate(setAsActive=True)
        policy = f"sample-{name}"
        iot.create_policy(
            policyName=policy, policyDocument=sample_policy(REGION, aws.moto.account_id)
        )
        iot.attach_policy(policyName=policy, target=cert["certificateArn"])
        iot.attach_thing_principal(thingName=name, principal=cert["certificateArn"])
        (tmp / f"{name}.crt").write_text(cert["certificatePem"])
        (tmp / f"{name}.key").write_text(cert["keyPair"]["PrivateKey"])
        assert aws.broker is not None
        self.name = name
        self.connection = mqtt_connection_builder.mtls_from_path(
            endpoint=aws.host,
            port=aws.broker.tls_port,
            cert_filepath=str(tmp / f"{name}.crt"),
            pri_key_filepath=str(tmp / f"{name}.key"),
            ca_filepath=str(aws.root_ca_path),
            client_id=name,
            clean_session=False,
            keep_alive_secs=30,
        )
        self.connection.connect().result(TIMEOUT)

    def subscribe(self, topic: str) -> Inbox:
        inbox = Inbox()

        def on_message(topic: str, payload: bytes, **_kwargs: Any) -> None:
            inbox((topic, json.loads(payload)))

        future, _ = self.connection.subscribe(topic, QOS1, on_message)
        future.result(TIMEOUT)
        return inbox

    def close(self) -> None:
        self.connection.disconnect().result(TIMEOUT)


@pytest.fixture
def device_factory(tmp_path: Path) -> Iterator[Any]:
    made: list[SampleDevice] = []

    def make(aws: AwsStandIn, name: str) -> SampleDevice:
        device = SampleDevice(aws, name, tmp_path)
        made.append(device)
        return device

    yield make
    for device in made:
        device.close()


async def test_http_publish_reaches_mqtt_subscribers(aws: AwsStandIn, device_factory: Any) -> None:
    """iot-data Publish hands the message to the broker (AWS API reference, Publish)."""
    device = await asyncio.to_thread(device_factory, aws, "pubsub-1")
    inbox = await asyncio.to_thread(device.subscribe, "test/topic")
    data = client(aws, "iot-data")
    await asyncio.to_thread(
        data.publish, topic="test/topic", qos=1, payload=json.dumps({"message": "Hello World!"})
    )
    topic, body = await asyncio.to_thread(inbox.take)
    assert (topic, body) == ("test/topic", {"message": "Hello World!"})


async def test_http_publish_on_a_shadow_topic_is_served_by_the_shadow_service(
    aws: AwsStandIn, device_factory: Any
) -> None:
    device = await asyncio.to_thread(device_factory, aws, "pubsub-2")
    shadow = iotshadow.IotShadowClient(device.connection)
    accepted = Inbox()
    future, _ = shadow.subscribe_to_update_shadow_accepted(
        iotshadow.UpdateShadowSubscriptionRequest(thing_name=device.name), QOS1, accepted
    )
    await asyncio.to_thread(future.result, TIMEOUT)
    data = client(aws, "iot-data")
    await asyncio.to_thread(
        data.publish,
        topic=f"$aws/things/{device.name}/shadow/update",
        qos=1,
        payload=json.dumps({"state": {"desired": {"color": "red"}}, "clientToken": "http-1"}),
    )
    answer = await asyncio.to_thread(accepted.take)
    assert (answer.client_token, answer.state.desired) == ("http-1", {"color": "red"})
    assert await asyncio.to_thread(aws.shadows.get, device.name) is not None  # type: ignore[union-attr]


async def test_jobs_data_plane_over_https_runs_a_job(aws: AwsStandIn, device_factory: Any) -> None:
    """boto3's iot-jobs-data (GetPending, StartNext, Describe, Update) as AWS serves it;
    moto has no such service and answered HTTP 500."""
    device = await asyncio.to_thread(device_factory, aws, "jobs-http-1")
    jobs = iotjobs.IotJobsClient(device.connection)
    next_changed = Inbox()
    future, _ = jobs.subscribe_to_next_job_execution_changed_events(
        iotjobs.NextJobExecutionChangedSubscriptionRequest(thing_name=device.name),
        QOS1,
        next_changed,
    )
    await asyncio.to_thread(future.result, TIMEOUT)
    iot, data = client(aws, "iot"), client(aws, "iot-jobs-data")
    arn = (await asyncio.to_thread(iot.describe_thing, thingName=device.name))["thingArn"]
    document = {"operation": "reboot", "delay": 5}
    await asyncio.to_thread(
        iot.create_job, jobId="http-job", targets=[arn], document=json.dumps(document)
    )
    queued = await asyncio.to_thread(next_changed.take, lambda e: e.execution is not None)
    assert queued.execution.job_id == "http-job"

    pending = await asyncio.to_thread(data.get_pending_job_executions, thingName=device.name)
    assert [j["jobId"] for j in pending["queuedJobs"]] == ["http-job"]
    assert pending["inProgressJobs"] == []
    started = await asyncio.to_thread(
        data.start_next_pending_job_execution,
        thingName=device.name,
        statusDetails={"step": "download"},
    )
    execution = started["execution"]
    assert (execution["jobId"], execution["status"]) == ("http-job", "IN_PROGRESS")
    assert execution["statusDetails"] == {"step": "download"}
    assert json.loads(execution["jobDocument"]) == document  # a JSON string over HTTPS
    assert (execution["versionNumber"], execution["executionNumber"]) == (2, 1)

    described = await asyncio.to_thread(
        data.describe_job_execution, thingName=device.name, jobId="http-job", executionNumber=1
    )
    assert described["execution"]["status"] == "IN_PROGRESS"
    without_doc = await asyncio.to_thread(
        data.describe_job_execution,
        thingName=device.name,
        jobId="$next",
        includeJobDocument=False,
    )
    assert without_doc["execution"]["jobId"] == "http-job"
    assert "jobDocument" not in without_doc["execution"]

    updated = await asyncio.to_thread(
        data.update_job_execution,
        thingName=device.name,
        jobId="http-job",
        status="SUCCEEDED",
        expectedVersion=2,
        statusDetails={"step": "done"},
        includeJobExecutionState=True,
        includeJobDocument=True,
    )
    assert updated["executionState"] == {
        "status": "SUCCEEDED",
        "statusDetails": {"step": "done"},
        "versionNumber": 3,
    }
    assert json.loads(updated["jobDocument"]) == document
    # The device hears over MQTT that nothing is next, as with an MQTT update.
    await asyncio.to_thread(next_changed.take, lambda e: e.execution is None)
    on_aws = await asyncio.to_thread(
        iot.describe_job_execution, jobId="http-job", thingName=device.name
    )
    assert on_aws["execution"]["status"] == "SUCCEEDED"

    with pytest.raises(data.exceptions.InvalidStateTransitionException):
        await asyncio.to_thread(
            data.update_job_execution, thingName=device.name, jobId="http-job", status="IN_PROGRESS"
        )
    with pytest.raises(data.exceptions.ResourceNotFoundException):
        await asyncio.to_thread(
            data.describe_job_execution, thingName=device.name, jobId="no-such-job"
        )
    nothing = await asyncio.to_thread(data.start_next_pending_job_execution, thingName=device.name)
    assert "execution" not in nothing


async def test_describe_endpoint_is_the_same_on_every_call_for_every_type(aws: AwsStandIn) -> None:
    """ "The first time DescribeEndpoint is called, an endpoint is created. All subsequent
    calls to DescribeEndpoint return the same endpoint" (AWS IoT API reference); moto
    made up a new host per call for iot:Jobs and iot:CredentialProvider."""
    iot = client(aws, "iot")

    def address(endpoint_type: str) -> str:
        return str(iot.describe_endpoint(endpointType=endpoint_type)["endpointAddress"])

    for endpoint_type, suffix in (
        ("iot:Data-ATS", f"-ats.iot.{REGION}.amazonaws.com"),
        ("iot:Data", f".iot.{REGION}.amazonaws.com"),
        ("iot:Jobs", f".jobs.iot.{REGION}.amazonaws.com"),
        ("iot:CredentialProvider", f".credentials.iot.{REGION}.amazonaws.com"),
    ):
        first = await asyncio.to_thread(address, endpoint_type)
        assert first.endswith(suffix), first
        assert await asyncio.to_thread(address, endpoint_type) == first
    legacy = await asyncio.to_thread(address, "iot:Data")
    assert "-ats" not in legacy  # the VeriSign-signed name of the same account endpoint
    assert (
        legacy.split(".")[0] + "-ats"
        == (await asyncio.to_thread(address, "iot:Data-ATS")).split(".")[0]
    )


async def test_shadow_rejects_with_the_messages_aws_documents(
    aws: AwsStandIn, device_factory: Any
) -> None:
    """Device Shadow error messages (developer guide): "State contains an invalid node",
    and "Invalid clientToken" for a token longer than 64 bytes (not characters)."""
    device = await asyncio.to_thread(device_factory, aws, "shadow-errors-1")
    shadow = iotshadow.IotShadowClient(device.connection)
    rejected, accepted = Inbox(), Inbox()
    for future, _ in (
        shadow.subscribe_to_update_shadow_rejected(
            iotshadow.UpdateShadowSubscriptionRequest(thing_name=device.name), QOS1, rejected
        ),
        shadow.subscribe_to_update_shadow_accepted(
            iotshadow.UpdateShadowSubscriptionRequest(thing_name=device.name), QOS1, accepted
        ),
    ):
        await asyncio.to_thread(future.result, TIMEOUT)
    topic = f"$aws/things/{device.name}/shadow/update"
    bad_node = {"state": {"delta": {"color": "red"}}, "clientToken": "node-1"}
    future, _ = device.connection.publish(topic, json.dumps(bad_node), QOS1)
    await asyncio.to_thread(future.result, TIMEOUT)
    error = await asyncio.to_thread(rejected.take)
    assert (error.code, error.message) == (400, "State contains an invalid node: 'delta'")
    assert error.client_token == "node-1"

    # 33 characters of two bytes each: 66 bytes, over AWS's 64-byte limit.
    request = iotshadow.UpdateShadowRequest(
        thing_name=device.name,
        state=iotshadow.ShadowState(reported={"color": "red"}),
        client_token="é" * 33,
    )
    await asyncio.to_thread(shadow.publish_update_shadow(request, QOS1).result, TIMEOUT)
    error = await asyncio.to_thread(rejected.take)
    assert (error.code, error.message) == (400, "Invalid clientToken")
    # 64 bytes exactly is accepted.
    request.client_token = "é" * 32
    await asyncio.to_thread(shadow.publish_update_shadow(request, QOS1).result, TIMEOUT)
    answer = await asyncio.to_thread(accepted.take)
    assert answer.client_token == "é" * 32


async def test_v2_shadow_client_gets_its_rejection_for_a_refused_document(
    aws: AwsStandIn, device_factory: Any
) -> None:
    """IotShadowClientV2 matches replies by clientToken: a rejection for the document's
    content must carry the token, or the SDK waits until its operation timeout."""
    device = await asyncio.to_thread(device_factory, aws, "shadow-v2-1")
    shadow = iotshadow.IotShadowClientV2(
        device.connection,
        mqtt_request_response.ClientOptions(
            max_request_response_subscriptions=2,
            max_streaming_subscriptions=1,
            operation_timeout_in_seconds=int(TIMEOUT),
        ),
    )
    too_deep: dict[str, Any] = {"level": 7}
    for level in range(6, 0, -1):
        too_deep = {f"l{level}": too_deep}
    request = iotshadow.UpdateShadowRequest(
        thing_name=device.name, state=iotshadow.ShadowState(desired=too_deep)
    )
    future = shadow.update_shadow(request)
    with pytest.raises(V2ServiceException) as refused:
        await asyncio.to_thread(future.result, TIMEOUT + 5)
    error = refused.value.modeled_error
    assert error is not None, refused.value.inner_error  # a reply, not the SDK's timeout
    assert (error.code, error.message) == (
        400,
        "JSON contains too many levels of nesting; maximum is 6",
    )


async def _watch(aws: AwsStandIn, topic_filter: str) -> tuple[mqtt.Connection, Inbox]:
    """An awsiotsdk connection with the bridge's identity, subscribed to `topic_filter`."""
    assert aws.broker is not None
    watcher = mqtt_connection_builder.mtls_from_path(
        endpoint=aws.host,
        port=aws.broker.tls_port,
        cert_filepath=str(aws.bridge_cert_path),
        pri_key_filepath=str(aws.bridge_key_path),
        ca_filepath=str(aws.root_ca_path),
        client_id="iot-bridge-fidelity",
        clean_session=True,
    )
    await asyncio.to_thread(watcher.connect().result, TIMEOUT)
    events = Inbox()

    def on_message(topic: str, payload: bytes, **_kwargs: Any) -> None:
        events((topic, json.loads(payload)))

    future, _ = watcher.subscribe(topic_filter, QOS1, on_message)
    await asyncio.to_thread(future.result, TIMEOUT)
    return watcher, events


async def test_thing_type_association_events_say_created_and_deleted(aws: AwsStandIn) -> None:
    """Developer guide, registry events: `$aws/events/thingTypeAssociation/thing/{thing}/
    {type}` carries `"operation": "CREATED|DELETED"` (the stand-in sent ADDED/REMOVED,
    the words of the newer .../thingType/{type}/added|removed topics)."""
    watcher, events = await _watch(aws, "$aws/events/thingTypeAssociation/#")
    iot = client(aws, "iot")
    await asyncio.to_thread(iot.create_thing_type, thingTypeName="lamp")
    await asyncio.to_thread(iot.create_thing, thingName="assoc-1", thingTypeName="lamp")
    await asyncio.to_thread(iot.update_thing, thingName="assoc-1", removeThingType=True)
    seen = [await asyncio.to_thread(events.take) for _ in range(2)]
    assert [topic for topic, _ in seen] == [
        "$aws/events/thingTypeAssociation/thing/assoc-1/lamp"
    ] * 2
    assert [(b["eventType"], b["operation"], b["thingTypeName"]) for _, b in seen] == [
        ("THING_TYPE_ASSOCIATION_EVENT", "CREATED", "lamp"),
        ("THING_TYPE_ASSOCIATION_EVENT", "DELETED", "lamp"),
    ]
    await asyncio.to_thread(watcher.disconnect().result, TIMEOUT)


async def test_list_named_shadows_pages_with_page_size_and_next_token(aws: AwsStandIn) -> None:
    """ListNamedShadowsForThing takes pageSize (1-100) and returns nextToken and timestamp
    (iot-data API reference); moto ignored pageSize, so pagination was never exercised."""
    iot, data = client(aws, "iot"), client(aws, "iot-data")
    await asyncio.to_thread(iot.create_thing, thingName="many-shadows")
    names = [f"cfg-{i}" for i in range(5)]
    for name in names:
        await asyncio.to_thread(
            data.update_thing_shadow,
            thingName="many-shadows",
            shadowName=name,
            payload=json.dumps({"state": {"reported": {"n": name}}}),
        )
    seen: list[str] = []
    pages = 0
    kwargs: dict[str, Any] = {"thingName": "many-shadows", "pageSize": 2}
    while True:
        page = await asyncio.to_thread(data.list_named_shadows_for_thing, **kwargs)
        pages += 1
        assert len(page["results"]) <= 2
        assert isinstance(page["timestamp"], int)
        seen.extend(page["results"])
        if not page.get("nextToken"):
            break
        kwargs["nextToken"] = page["nextToken"]
    assert (sorted(seen), pages) == (names, 3)
    whole = await asyncio.to_thread(data.list_named_shadows_for_thing, thingName="many-shadows")
    assert sorted(whole["results"]) == names
    assert "nextToken" not in whole


async def test_retained_messages_can_be_read_back_over_https(
    aws: AwsStandIn, device_factory: Any
) -> None:
    """GetRetainedMessage / ListRetainedMessages (iot-data API reference) answer from the
    broker's retained messages, a device's and an HTTPS Publish's alike; moto has neither
    call and answered HTTP 500."""
    device = await asyncio.to_thread(device_factory, aws, "retainer-1")
    future, _ = device.connection.publish(
        "test/retained", json.dumps({"fw": "1.2.3"}), QOS1, retain=True
    )
    await asyncio.to_thread(future.result, TIMEOUT)
    data = client(aws, "iot-data")
    await asyncio.to_thread(
        data.publish, topic="test/http-retained", qos=1, retain=True, payload=b'{"mode":"eco"}'
    )

    def retained(topic: str) -> dict[str, Any]:
        # The HTTPS publish reaches the broker just after the call returns: wait for it.
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                return dict(data.get_retained_message(topic=topic))
            except data.exceptions.ResourceNotFoundException:
                if time.monotonic() > deadline:
                    raise

    from_http = await asyncio.to_thread(retained, "test/http-retained")
    assert (from_http["topic"], from_http["payload"], from_http["qos"]) == (
        "test/http-retained",
        b'{"mode":"eco"}',
        1,
    )
    assert isinstance(from_http["lastModifiedTime"], int)
    from_device = await asyncio.to_thread(retained, "test/retained")
    assert json.loads(from_device["payload"]) == {"fw": "1.2.3"}

    listed = await asyncio.to_thread(data.list_retained_messages)
    assert [(m["topic"], m["payloadSize"]) for m in listed["retainedTopics"]] == [
        ("test/http-retained", len(b'{"mode":"eco"}')),
        ("test/retained", len(json.dumps({"fw": "1.2.3"}))),
    ]
    first = await asyncio.to_thread(data.list_retained_messages, maxResults=1)
    assert [m["topic"] for m in first["retainedTopics"]] == ["test/http-retained"]
    rest = await asyncio.to_thread(
        data.list_retained_messages, maxResults=1, nextToken=first["nextToken"]
    )
    assert [m["topic"] for m in rest["retainedTopics"]] == ["test/retained"]
    assert "nextToken" not in rest
    with pytest.raises(data.exceptions.ResourceNotFoundException):
        await asyncio.to_thread(data.get_retained_message, topic="test/never-retained")


async def test_subscribe_and_unsubscribe_publish_lifecycle_events(
    aws: AwsStandIn, device_factory: Any
) -> None:
    """Developer guide, lifecycle events: AWS IoT publishes
    `$aws/events/subscriptions/subscribed|unsubscribed/{clientId}` with the client, session,
    principal and topics; the stand-in published only presence events."""
    watcher, events = await _watch(aws, "$aws/events/subscriptions/#")
    device = await asyncio.to_thread(device_factory, aws, "subscriber-1")
    await asyncio.to_thread(device.subscribe, "test/topic")
    future, _ = device.connection.unsubscribe("test/topic")
    await asyncio.to_thread(future.result, TIMEOUT)
    mine = [
        await asyncio.to_thread(events.take, lambda e: e[1].get("clientId") == device.name)
        for _ in range(2)
    ]
    assert [topic for topic, _ in mine] == [
        "$aws/events/subscriptions/subscribed/subscriber-1",
        "$aws/events/subscriptions/unsubscribed/subscriber-1",
    ]
    subscribed, unsubscribed = (body for _, body in mine)
    assert (subscribed["eventType"], subscribed["topics"]) == ("subscribed", ["test/topic"])
    assert (unsubscribed["eventType"], unsubscribed["topics"]) == ("unsubscribed", ["test/topic"])
    iot = client(aws, "iot")
    principals = await asyncio.to_thread(iot.list_thing_principals, thingName=device.name)
    certificate_id = principals["principals"][0].rsplit("/", 1)[1]
    assert subscribed["principalIdentifier"] == certificate_id
    assert subscribed["sessionIdentifier"] == unsubscribed["sessionIdentifier"]
    assert isinstance(subscribed["timestamp"], int)
    await asyncio.to_thread(watcher.disconnect().result, TIMEOUT)
