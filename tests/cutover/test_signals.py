"""Which signal says a device reached Azure, and AWS job retries, end to end.

Devices run the reference agent (azure-iot-device connecting to the emulator with the
device's own AWS certificate); the emulator emits IoT Hub's connection-state events on its
Event Hubs-compatible endpoint, which the cutover reads with its own consumer group.
"""

import datetime as dt
import time

import aiohttp
import pytest

from bridge.azure.events import HubEvent
from bridge.core.machine import State
from bridge.core.store import Wave, open_store
from bridge.cutover.arrivals import Arrivals, device_connected_at
from bridge.cutover.wave import WaveState, job_sent_key
from bridge.metrics import Metrics
from bridge_sim.fleet import Fleet
from tests.cutover.conftest import iot_client, until
from tests.cutover.test_waves import _all_in, _cli, _daemon, _settings, _wave

pytestmark = pytest.mark.timeout(300)


def _event(source, op_type=None, module=None, stamp="2026-12-07T00:00:01.5Z"):
    properties = {"opType": op_type, "operationTimestamp": stamp} if op_type else {}
    if module:
        properties["moduleId"] = module
    return HubEvent("0", 1, 99.0, source, "d1", module, b"{}", properties)


def test_only_the_device_connecting_as_itself_counts():
    connected = device_connected_at(_event("deviceConnectionStateEvents", "deviceConnected"))
    assert connected == dt.datetime(2026, 12, 7, 0, 0, 1, 500000, tzinfo=dt.UTC).timestamp()
    for other in (
        _event("deviceConnectionStateEvents", "deviceDisconnected"),
        _event("deviceConnectionStateEvents", "deviceConnected", module="aws-bridge"),
        _event("Telemetry"),
        _event("twinChangeEvents", "updateTwin"),
    ):
        assert device_connected_at(other) is None
    unstamped = _event("deviceConnectionStateEvents", "deviceConnected", stamp="")
    assert device_connected_at(unstamped) == 99.0  # the enqueued time instead


async def test_a_device_connecting_before_its_wave_s_job_id_is_stored_is_seen(tmp_path):
    # The job is sent, then its moment stored, then the wave's job id: a device that gets
    # its job and connects in between was dropped, and its verdict waited for the next
    # twin query (30 s by default), with a time to Azure that long.
    event = _event("deviceConnectionStateEvents", "deviceConnected")
    connected = device_connected_at(event)
    async with open_store(f"sqlite:///{tmp_path / 'store.db'}") as store:
        await store.add_wave(Wave("w1", WaveState.RUNNING, {}), ["d1"])
        await store.set_checkpoint(job_sent_key("w1"), repr(connected - 1))
        arrivals = Arrivals(store, None)
        assert await arrivals.handle("0", [event])
        assert await arrivals.connected_at("w1", "d1") == connected
        assert await Arrivals(store, None).connected_at("w1", "d1") == connected  # stored


async def _readyz(settings):
    url = f"http://127.0.0.1:{settings.http.port}/readyz"
    async with aiohttp.ClientSession() as client, client.get(url) as answer:
        return await answer.json()


async def _signal(settings):
    try:
        checks = (await _readyz(settings))["checks"]
    except aiohttp.ClientError:
        return None
    return checks.get("cutover.arrival_signal", {}).get("detail")


async def _cut_over(stack, tmp_path, prefix, cutover):
    """Two healthy devices through one wave; the wave, the metrics and the signal used."""
    env = stack.env()
    dsn = f"sqlite:///{tmp_path / 'bridge.db'}"
    settings = _settings(dsn).model_copy(update={"cutover": cutover})
    metrics = Metrics.create()
    async with (
        Fleet(env, tmp_path / "fleet", devices=2, prefix=prefix) as fleet,
        _daemon(env, settings, metrics),
    ):
        await until(lambda: _all_in(dsn, fleet.names, State.MIRRORED), what="the fleet mirrored")
        signal = await until(lambda: _signal(settings), what="the arrival signal on /readyz")
        if cutover.connection_events:  # the reader claims the endpoint's partitions
            signal = await until(
                lambda: _signal_is(settings, "connection-state events"), what="events read"
            )
        await _cli(dsn, "plan", "w", "--devices", ",".join(fleet.names), "--deadline", "60")
        started = time.time()
        await _cli(dsn, "start", "w")
        wave = await until(lambda: _wave(dsn, "w", "done", "aborted"), what="the wave")
        return wave, metrics, signal, time.time() - started


async def _signal_is(settings, start):
    signal = await _signal(settings)
    return signal if signal and signal.startswith(start) else None


async def test_connection_events_say_when_devices_reached_azure(stack, tmp_path):
    # No safety-net twin query within the test: arrivals can only come from the events.
    cutover = _settings("").cutover.model_copy(
        update={"twin_query_interval": 3600.0, "connection_events": True}
    )
    wave, metrics, signal, took = await _cut_over(stack, tmp_path, "ev", cutover)
    assert signal.startswith("connection-state events")
    assert wave["state"] == "done", wave
    for device in wave["devices"]:
        assert device["outcome"] == "cut_over", device
        assert "(connection-state event)" in device["reason"], device
    sample = metrics.registry.get_sample_value
    assert sample("bridge_cutover_time_to_azure_seconds_count") == 2
    # Timed from the events, so within the wave's own duration.
    assert 0 < sample("bridge_cutover_time_to_azure_seconds_sum") < 2 * took


async def test_without_the_endpoint_twin_queries_decide(stack, tmp_path):
    cutover = _settings("").cutover.model_copy(update={"connection_events": False})
    wave, _metrics, signal, _took = await _cut_over(stack, tmp_path, "tq", cutover)
    assert signal == "twin queries (BRIDGE_CUTOVER__CONNECTION_EVENTS is false)"
    assert wave["state"] == "done", wave
    for device in wave["devices"]:
        assert device["outcome"] == "cut_over", device
        assert "(twin)" in device["reason"], device


async def test_a_device_that_fails_its_first_attempt_is_judged_on_its_retry(stack, tmp_path):
    env = stack.env()
    dsn = f"sqlite:///{tmp_path / 'bridge.db'}"
    settings = _settings(dsn)
    settings = settings.model_copy(
        update={"cutover": settings.cutover.model_copy(update={"fallback_deadline_seconds": 2})}
    )
    unreachable = {0: ["azure-unreachable"], 1: ["azure-unreachable"]}
    async with (
        Fleet(env, tmp_path / "fleet", devices=2, prefix="rt", misbehaving=unreachable) as fleet,
        _daemon(env, settings),
    ):
        flaky, broken = fleet.names
        agent = fleet.devices[flaky].agent
        report = agent._update_job

        def network_back_after_first_failure(job_id, status, details):
            # Azure becomes reachable before AWS hears of the failure, so the retry works.
            if status == "FAILED" and "azure-unreachable" in agent.settings.faults:
                agent.settings.faults.remove("azure-unreachable")
            report(job_id, status, details)

        agent._update_job = network_back_after_first_failure
        await until(lambda: _all_in(dsn, fleet.names, State.MIRRORED), what="the fleet mirrored")
        planned = await _cli(
            dsn, "plan", "w", "--devices", f"{flaky},{broken}", "--retries", "1", "--deadline", "60"
        )
        assert "up to 2 attempts a device" in planned
        await _cli(dsn, "start", "w")
        wave = await until(lambda: _wave(dsn, "w", "done", "aborted"), what="the wave")

    outcomes = {d["device_id"]: d for d in wave["devices"]}
    assert outcomes[flaky]["outcome"] == "cut_over", outcomes[flaky]
    assert outcomes[broken]["outcome"] == "rolled_back", outcomes[broken]
    assert outcomes[broken]["reason"].startswith(
        "job execution FAILED on attempt 2 of 2 (reason: azure unreachable:"
    ), outcomes[broken]
    iot = iot_client(env)
    job = iot.describe_job(jobId=wave["job_id"])["job"]
    assert job["jobExecutionsRetryConfig"] == {
        "criteriaList": [{"failureType": "ALL", "numberOfRetries": 1}]
    }

    def summaries():
        return {
            s["thingArn"].rsplit("/", 1)[-1]: s["jobExecutionSummary"]
            for s in iot.list_job_executions_for_job(jobId=wave["job_id"])["executionSummaries"]
        }

    # A device marks its job SUCCEEDED once on Azure; its verdict does not wait for that.
    await until(
        lambda: summaries()[flaky]["status"] == "SUCCEEDED", what="the retried job SUCCEEDED"
    )
    found = summaries()
    assert (found[flaky]["status"], found[flaky]["retryAttempt"]) == ("SUCCEEDED", 1)
    assert (found[broken]["status"], found[broken]["retryAttempt"]) == ("FAILED", 1)
