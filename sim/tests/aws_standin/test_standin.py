"""The whole AWS stand-in through Amazon's SDKs: mutual TLS, shadows, events, jobs, presence."""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import boto3
import botocore.config
import pytest
from awscrt import mqtt
from awsiot import iotjobs, iotshadow

from bridge_sim.aws.standin import AwsStandIn
from tests.aws_devices import TIMEOUT, Inbox, bridge_client, connect_device, register_thing

REGION = "eu-central-1"
QOS1 = mqtt.QoS.AT_LEAST_ONCE


@pytest.fixture
async def aws(tmp_path: Path) -> AsyncIterator[AwsStandIn]:
    async with AwsStandIn(workdir=tmp_path / "aws", region=REGION) as standin:
        yield standin


def iot_client(aws: AwsStandIn, service: str = "iot") -> Any:
    env = aws.env()
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name=env["AWS_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        config=botocore.config.Config(retries={"max_attempts": 1}),
    )


async def test_device_shadow_round_trip_over_mutual_tls(aws: AwsStandIn) -> None:
    iot = iot_client(aws)
    thing = await asyncio.to_thread(register_thing, iot, "lamp-1", REGION)
    device = await asyncio.to_thread(connect_device, aws, thing)
    shadow = iotshadow.IotShadowClient(device.client)
    accepted, rejected, deltas, documents = Inbox(), Inbox(), Inbox(), Inbox()
    for future, _ in (
        shadow.subscribe_to_update_shadow_accepted(
            iotshadow.UpdateShadowSubscriptionRequest(thing_name=thing.name), QOS1, accepted
        ),
        shadow.subscribe_to_update_shadow_rejected(
            iotshadow.UpdateShadowSubscriptionRequest(thing_name=thing.name), QOS1, rejected
        ),
        shadow.subscribe_to_shadow_delta_updated_events(
            iotshadow.ShadowDeltaUpdatedSubscriptionRequest(thing_name=thing.name), QOS1, deltas
        ),
        shadow.subscribe_to_shadow_updated_events(
            iotshadow.ShadowUpdatedSubscriptionRequest(thing_name=thing.name), QOS1, documents
        ),
    ):
        await asyncio.to_thread(future.result, TIMEOUT)
    request = iotshadow.UpdateShadowRequest(
        thing_name=thing.name,
        state=iotshadow.ShadowState(reported={"on": False, "brightness": 10}),
        client_token="tok-1",
    )
    await asyncio.to_thread(shadow.publish_update_shadow(request, QOS1).result, TIMEOUT)
    answer = await asyncio.to_thread(accepted.take)
    assert answer.client_token == "tok-1"
    assert answer.version == 1
    assert answer.state.reported == {"on": False, "brightness": 10}
    # A change made through the REST API reaches the device as a delta.
    data = iot_client(aws, "iot-data")
    await asyncio.to_thread(
        data.update_thing_shadow,
        thingName=thing.name,
        payload=json.dumps({"state": {"desired": {"on": True}}}),
    )
    delta = await asyncio.to_thread(deltas.take)
    assert delta.state == {"on": True}
    assert delta.version == 2
    updated = await asyncio.to_thread(documents.take, lambda d: d.current.version == 2)
    assert updated.previous.state.reported == {"on": False, "brightness": 10}
    assert updated.current.state.desired == {"on": True}
    # A stale version is refused with AWS's code, and the service keeps serving.
    stale = iotshadow.UpdateShadowRequest(
        thing_name=thing.name,
        state=iotshadow.ShadowState(reported={"on": True}),
        version=1,
        client_token="tok-2",
    )
    await asyncio.to_thread(shadow.publish_update_shadow(stale, QOS1).result, TIMEOUT)
    error = await asyncio.to_thread(rejected.take)
    assert (error.code, error.client_token) == (409, "tok-2")
    fresh = iotshadow.UpdateShadowRequest(
        thing_name=thing.name, state=iotshadow.ShadowState(reported={"on": True}), version=2
    )
    await asyncio.to_thread(shadow.publish_update_shadow(fresh, QOS1).result, TIMEOUT)
    assert (await asyncio.to_thread(accepted.take, lambda a: a.version == 3)).version == 3
    doc = json.loads(data.get_thing_shadow(thingName=thing.name)["payload"].read())
    assert doc["state"]["reported"]["on"] is True
    assert "delta" not in doc["state"]
    await asyncio.to_thread(device.stop)


async def test_malformed_and_named_shadow_requests_over_raw_mqtt(aws: AwsStandIn) -> None:
    iot = iot_client(aws)
    await asyncio.to_thread(register_thing, iot, "meter-7", REGION)
    async with bridge_client(aws) as bridge:
        await bridge.subscribe("$aws/things/meter-7/shadow/#", qos=1)
        # The bridge's policy allows it to update shadows (the reverse direction).
        await bridge.publish("$aws/things/meter-7/shadow/name/cfg/update", b"{not json", qos=1)
        await bridge.publish(
            "$aws/things/meter-7/shadow/name/cfg/update",
            json.dumps({"state": {"desired": {"mode": "eco"}}, "clientToken": "n1"}),
            qos=1,
        )
        await bridge.publish("$aws/things/meter-7/shadow/get", b"", qos=1)
        seen: dict[str, Any] = {}
        async with asyncio.timeout(TIMEOUT):
            async for message in bridge.messages:
                topic = message.topic.value
                if topic.endswith(("/rejected", "/accepted")):
                    assert isinstance(message.payload, bytes)
                    seen[topic] = json.loads(message.payload)
                if len(seen) == 3:
                    break
    bad = seen["$aws/things/meter-7/shadow/name/cfg/update/rejected"]
    assert (bad["code"], bad["message"]) == (400, "Invalid JSON")
    good = seen["$aws/things/meter-7/shadow/name/cfg/update/accepted"]
    assert good["clientToken"] == "n1"
    missing = seen["$aws/things/meter-7/shadow/get/rejected"]
    assert missing["code"] == 404


async def test_registry_and_presence_events_reach_the_bridge(aws: AwsStandIn) -> None:
    iot = iot_client(aws)
    async with bridge_client(aws) as bridge:
        await bridge.subscribe("$aws/events/#", qos=1)
        thing = await asyncio.to_thread(register_thing, iot, "sensor-9", REGION)
        await asyncio.to_thread(iot.create_thing_group, thingGroupName="plant")
        await asyncio.to_thread(
            iot.add_thing_to_thing_group, thingGroupName="plant", thingName="sensor-9"
        )
        device = await asyncio.to_thread(connect_device, aws, thing)
        await asyncio.to_thread(device.stop)
        wanted = {
            "$aws/events/thing/sensor-9/created",
            "$aws/events/thingGroup/plant/created",
            "$aws/events/thingGroupMembership/thingGroup/plant/thing/sensor-9/added",
            "$aws/events/presence/connected/sensor-9",
            "$aws/events/presence/disconnected/sensor-9",
        }
        seen: dict[str, Any] = {}
        async with asyncio.timeout(TIMEOUT):
            async for message in bridge.messages:
                assert isinstance(message.payload, bytes)
                seen[message.topic.value] = json.loads(message.payload)
                if wanted <= seen.keys():
                    break
    connected = seen["$aws/events/presence/connected/sensor-9"]
    disconnected = seen["$aws/events/presence/disconnected/sensor-9"]
    assert connected["principalIdentifier"] == thing.certificate_id
    assert disconnected["clientInitiatedDisconnect"] is True
    assert disconnected["versionNumber"] > connected["versionNumber"]
    assert seen["$aws/events/thing/sensor-9/created"]["versionNumber"] == 1


async def test_deactivated_certificate_is_refused_on_the_next_connection(aws: AwsStandIn) -> None:
    iot = iot_client(aws)
    thing = await asyncio.to_thread(register_thing, iot, "door-3", REGION)
    other = await asyncio.to_thread(register_thing, iot, "door-4", REGION)
    device = await asyncio.to_thread(connect_device, aws, thing)
    await asyncio.to_thread(device.stop)
    await asyncio.to_thread(
        iot.update_certificate, certificateId=thing.certificate_id, newStatus="INACTIVE"
    )
    refused = await asyncio.to_thread(connect_device, aws, thing, wait=False)
    failure = await asyncio.to_thread(refused.failures.get, True, TIMEOUT)
    assert failure is not None
    assert not refused.connected.done()
    await asyncio.to_thread(refused.stop)
    still = await asyncio.to_thread(connect_device, aws, other)
    await asyncio.to_thread(still.stop)


async def test_a_job_runs_end_to_end_with_the_jobs_client(aws: AwsStandIn) -> None:
    iot = iot_client(aws)
    thing = await asyncio.to_thread(register_thing, iot, "pump-2", REGION)
    device = await asyncio.to_thread(connect_device, aws, thing)
    jobs = iotjobs.IotJobsClient(device.client)
    notified, started, updated = Inbox(), Inbox(), Inbox()
    for future, _ in (
        jobs.subscribe_to_next_job_execution_changed_events(
            iotjobs.NextJobExecutionChangedSubscriptionRequest(thing_name=thing.name),
            QOS1,
            notified,
        ),
        jobs.subscribe_to_start_next_pending_job_execution_accepted(
            iotjobs.StartNextPendingJobExecutionSubscriptionRequest(thing_name=thing.name),
            QOS1,
            started,
        ),
        jobs.subscribe_to_update_job_execution_accepted(
            iotjobs.UpdateJobExecutionSubscriptionRequest(thing_name=thing.name, job_id="+"),
            QOS1,
            updated,
        ),
    ):
        await asyncio.to_thread(future.result, TIMEOUT)
    job_id = f"cutover-{uuid.uuid4().hex[:8]}"
    document = {"operation": "migrate", "iothub": "myhub.azure-devices.net"}
    # As on AWS, job execution events are published only once their type is enabled.
    await asyncio.to_thread(
        iot.update_event_configurations,
        eventConfigurations={"JOB_EXECUTION": {"Enabled": True}},
    )
    async with bridge_client(aws) as bridge:
        await bridge.subscribe(f"$aws/events/jobExecution/{job_id}/#", qos=1)
        await asyncio.to_thread(
            iot.create_job,
            jobId=job_id,
            targets=[
                thing.certificate_arn.replace(f"cert/{thing.certificate_id}", f"thing/{thing.name}")
            ],
            document=json.dumps(document),
        )
        event = await asyncio.to_thread(notified.take, lambda e: e.execution is not None)
        assert event.execution.job_id == job_id
        await asyncio.to_thread(
            jobs.publish_start_next_pending_job_execution(
                iotjobs.StartNextPendingJobExecutionRequest(
                    thing_name=thing.name, client_token="s1"
                ),
                QOS1,
            ).result,
            TIMEOUT,
        )
        start = await asyncio.to_thread(started.take)
        assert start.execution.job_document == document
        assert start.execution.status == "IN_PROGRESS"
        await asyncio.to_thread(
            jobs.publish_update_job_execution(
                iotjobs.UpdateJobExecutionRequest(
                    thing_name=thing.name,
                    job_id=job_id,
                    status="SUCCEEDED",
                    expected_version=start.execution.version_number,
                ),
                QOS1,
            ).result,
            TIMEOUT,
        )
        await asyncio.to_thread(updated.take)
        async with asyncio.timeout(TIMEOUT):
            async for message in bridge.messages:
                assert message.topic.value == f"$aws/events/jobExecution/{job_id}/succeeded"
                break
    execution = iot.describe_job_execution(jobId=job_id, thingName=thing.name)["execution"]
    assert execution["status"] == "SUCCEEDED"
    await asyncio.to_thread(device.stop)


async def test_describe_endpoint_is_stable_and_names_the_data_endpoint(aws: AwsStandIn) -> None:
    iot = iot_client(aws)
    first = iot.describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"]
    assert first == iot.describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"]
    assert first.endswith(f"-ats.iot.{REGION}.amazonaws.com")
    env = aws.env()
    assert env["AWS_IOT_DATA_ENDPOINT"].startswith("127.0.0.1:")
    assert Path(env["AWS_IOT_BRIDGE_CERT"]).read_text().startswith("-----BEGIN CERTIFICATE-----")


async def test_oversized_message_closes_that_connection_only(aws: AwsStandIn) -> None:
    iot = iot_client(aws)
    await asyncio.to_thread(register_thing, iot, "big-1", REGION)
    payload = json.dumps({"state": {"reported": {"blob": "x" * (130 * 1024)}}})

    async def send_oversized() -> None:
        async with bridge_client(aws, "iot-bridge-big") as big:
            await big.publish("$aws/things/big-1/shadow/update", payload, qos=1, timeout=5)
            await big.publish("$aws/things/big-1/shadow/update", b"{}", qos=1, timeout=5)

    async with bridge_client(aws, "iot-bridge-ok") as ok:
        await ok.subscribe("$aws/things/big-1/shadow/update/accepted", qos=1)
        # The broker closes the connection: paho reports it as an MQTT or a TLS error.
        with pytest.raises((aiomqtt.MqttError, OSError)) as info:
            await send_oversized()
        assert "timed out" not in str(info.value), "the broker must close, not ignore"
        update = json.dumps({"state": {"reported": {"v": 1}}})
        await ok.publish("$aws/things/big-1/shadow/update", update, qos=1)
        async with asyncio.timeout(TIMEOUT):
            async for message in ok.messages:
                assert isinstance(message.payload, bytes)
                assert json.loads(message.payload)["state"] == {"reported": {"v": 1}}
                break
