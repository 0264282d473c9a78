"""The cutover as a service of the daemon: sends each running wave's job, judges on Azure.

Success is the device connecting to IoT Hub as itself, never the AWS job status (AWS says
SUCCEEDED for work that never happened, and executions stick IN_PROGRESS). Two signals say
when a device reached Azure: its `deviceConnected` event on the Event Hubs-compatible
endpoint (`arrivals.py`, pushed, when the endpoint is configured and read), else the twins
(one query per wave and poll, `connectionState` Connected). Either way the verdict also
needs the device's own reported `migration` section naming this wave's job, read from its
twin. Reported properties can be written only over the device's own connection (the
service API cannot write them, and the bridge never holds device keys), so together they
say the device itself is on Azure.

With `retries`, AWS runs a FAILED or TIMED_OUT execution again; such an ending is not a
verdict while attempts are left, and the device's deadline grows by one per attempt.

Every step is repeatable: the job id is fixed per wave (a restart finds the job it
created), transitions are read from the store each poll, so a daemon killed mid-wave picks
the wave up where the store says it stood.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Mapping
from types import TracebackType
from typing import NamedTuple, Self

from botocore.exceptions import ClientError

from bridge.aws.clients import AwsApi, open_clients
from bridge.aws.ratelimit import RateLimiter
from bridge.azure.hub import IotHubService
from bridge.azure.sas import ServiceConnectionString
from bridge.config import CloudSettings, Settings
from bridge.core.machine import Event, State
from bridge.core.milestones import record_cut_over
from bridge.core.service import Check
from bridge.core.store import Device, Store, Wave, WaveDevice, open_store
from bridge.cutover.arrivals import Arrivals, open_arrivals
from bridge.cutover.finalize import finalize_due
from bridge.cutover.gauges import WaveGauges
from bridge.cutover.job import JobDocument
from bridge.cutover.twins import on_azure, query_arrivals
from bridge.cutover.wave import ACTIVE, WaveSpec, WaveState, job_id_for, job_sent_key
from bridge.errors import ConfigError, Gone
from bridge.logging import get_logger
from bridge.metrics import Metrics

__all__ = ["CutoverService", "Outcome"]

_log = get_logger("cutover.service")

_FAILED_EXECUTIONS = frozenset({"FAILED", "REJECTED", "TIMED_OUT", "CANCELED", "REMOVED"})
_SCHEDULABLE = frozenset({State.MIRRORED, State.ROLLED_BACK})
_NOT_YET = frozenset({State.DISCOVERED, State.PROVISIONING, State.SYNCING})


class Execution(NamedTuple):
    """A device's job execution as AWS lists it: its status and which attempt it is."""

    status: str
    attempt: int  # 1 for the first run, 2 for the first retry...


class Outcome:
    """How a device ended in its wave (stored with a reason)."""

    CUT_OVER = "cut_over"  # seen on Azure as itself
    ROLLED_BACK = "rolled_back"  # did not make it; works on AWS
    LEFT_ON_AWS = "left_on_aws"  # the wave stopped before the job reached it
    SKIPPED = "skipped"  # not in a state to move when the wave started


# A device of a sent wave found in these states without an outcome was decided by a daemon
# that died before writing the outcome down.
_DECIDED = {State.CUT_OVER: Outcome.CUT_OVER, State.ROLLED_BACK: Outcome.ROLLED_BACK}


class CutoverService:
    """Runs the waves operators start with `iot-bridge cutover start`."""

    name = "cutover"

    def __init__(self, cloud: CloudSettings, settings: Settings, *, metrics: Metrics) -> None:
        self._cloud = cloud
        self._settings = settings
        self._metrics = metrics
        self._stack = contextlib.AsyncExitStack()
        self._stopping = asyncio.Event()
        self._store: Store | None = None
        self._iot: AwsApi | None = None
        self._hub: IotHubService | None = None
        self._document: JobDocument | None = None
        self._arrivals: Arrivals | None = None
        self._queried_at: dict[str, float] = {}  # wave -> monotonic time of its last query
        self._signal = ""
        self._last_error = ""
        self._gauges = WaveGauges(metrics)

    async def __aenter__(self) -> Self:
        try:
            await self._open()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stack.aclose()

    async def _open(self) -> None:
        cloud, settings = self._cloud, self._settings
        if cloud.IOTHUB_CONNECTION_STRING is None:
            raise ConfigError("IOTHUB_CONNECTION_STRING is not set: cutover has no IoT Hub")
        connection = ServiceConnectionString.parse(
            cloud.IOTHUB_CONNECTION_STRING.get_secret_value()
        )
        self._document = self._job_document(connection.host_name)
        enter = self._stack.enter_async_context
        self._store = await enter(open_store(settings.store.dsn))
        limiter = RateLimiter(scale=settings.mirror.aws_rate_scale)
        self._iot, _data = await enter(open_clients(cloud, limiter, concurrency=4))
        self._hub = await enter(
            IotHubService(connection, ca_bundle=cloud.IOTHUB_ROOT_CA, max_connections=8)
        )
        self._arrivals = await open_arrivals(self._stack, self._store, cloud, settings.cutover)

    def _job_document(self, service_host: str) -> JobDocument:
        cloud, cutover = self._cloud, self._settings.cutover
        anchors = list(cutover.trust_anchors)
        if cloud.IOTHUB_ROOT_CA is not None:
            anchors.append(cloud.IOTHUB_ROOT_CA.read_text())
        hub: dict[str, str] = {
            "hostName": cutover.hub_host_name or cloud.IOTHUB_HOSTNAME or service_host
        }
        if cloud.IOTHUB_GATEWAY_HOST:
            hub["gatewayHostName"] = cloud.IOTHUB_GATEWAY_HOST
        return JobDocument.model_validate(
            {
                "hub": hub,
                "trustAnchors": anchors,
                "fallbackDeadlineSeconds": cutover.fallback_deadline_seconds,
            }
        )

    def stop(self) -> None:
        """Stop starting new steps; the step in flight finishes."""
        self._stopping.set()

    async def ready(self) -> Mapping[str, Check]:
        """The store answers and the last poll went through; which signal finds arrivals
        (either one will do, so that check always holds)."""
        store = self._parts()[0]
        await store.schema_version()
        return {
            "store": Check(ok=True),
            "poll": Check(not self._last_error, self._last_error),
            "arrival_signal": Check(ok=True, detail=self._signal_in_use().describe()),
        }

    def _signal_in_use(self) -> Arrivals:
        if self._arrivals is None:
            raise RuntimeError("the cutover service was not started")
        return self._arrivals

    async def run(self) -> None:
        """Read connection-state events and poll the waves until stopped."""
        arrivals = self._signal_in_use()
        reading = asyncio.create_task(arrivals.run(), name="cutover.arrivals")
        try:
            await self._poll()
        finally:
            await arrivals.close()
            with contextlib.suppress(asyncio.CancelledError):
                await reading

    def _log_signal(self) -> None:
        in_use = self._signal_in_use()
        signal = "events" if in_use.in_use else "twin_queries"
        if signal != self._signal:
            self._signal = signal
            _log.info("cutover.arrival_signal", signal=signal, detail=in_use.describe())

    async def _poll(self) -> None:
        store = self._parts()[0]
        interval = self._settings.cutover.poll_interval
        while not self._stopping.is_set():
            self._log_signal()
            for wave in await store.waves():
                if wave.state not in ACTIVE or self._stopping.is_set():
                    continue
                try:
                    await self.step(wave)
                    self._last_error = ""
                except Exception as exc:
                    self._last_error = f"wave {wave.name}: {exc}"
                    _log.exception("cutover.wave_step_failed", wave=wave.name)
            await self._finalize()
            await self._export()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), interval)

    async def _finalize(self) -> None:
        """Finalize devices whose soak is over; a failure is logged and tried next poll."""
        store, iot = self._parts()[:2]
        cutover = self._settings.cutover
        try:
            await finalize_due(
                store,
                iot,
                soak_seconds=cutover.soak_seconds,
                retire_certificates=cutover.retire_certificates,
            )
        except Exception as exc:
            self._last_error = f"finalizing: {exc}"
            _log.exception("cutover.finalize_failed")

    async def _export(self) -> None:
        """The waves as gauges; a failure here is logged and never stops the waves."""
        store = self._parts()[0]
        try:
            await self._gauges.export(store, await store.waves())
        except Exception:
            _log.exception("cutover.export_failed")

    async def step(self, wave: Wave) -> None:
        """One look at one active wave: send, judge, abort or finish as the store says."""
        store = self._parts()[0]
        spec = WaveSpec.model_validate(wave.spec)
        members = await store.wave_devices(wave.name)
        devices = await store.get_devices([m.device_id for m in members])
        if wave.state == WaveState.RUNNING and wave.job_id is None:
            await self._send(wave, spec, members, devices)
            return
        stopping = wave.state in {WaveState.ABORTING, WaveState.ROLLING_BACK}
        if stopping and wave.job_id is None:
            await self._unschedule(wave, members, devices)
            await self._maybe_finish(wave, spec)
            return
        if stopping:
            await self._cancel_job(wave)
        await self._judge(wave, spec, members, devices, stopping=stopping)
        await self._maybe_finish(wave, spec)

    async def _send(
        self, wave: Wave, spec: WaveSpec, members: list[WaveDevice], devices: dict[str, Device]
    ) -> None:
        store, iot = self._parts()[:2]
        moving = await self._schedule(wave, members, devices)
        if moving is None:
            return  # the mirror is still writing a device; look again next poll
        if not moving:
            await store.update_wave(wave.name, state=WaveState.DONE, reason="no device to move")
            return
        arns = [(await iot.call("describe_thing", thingName=d))["thingArn"] for d in moving]
        job_id = job_id_for(wave.name)
        assert self._document is not None
        document = self._document.model_copy(update={"firmware": spec.firmware})
        try:
            await iot.call(
                "create_job",
                jobId=job_id,
                targets=arns,
                document=json.dumps(document.wire()),
                description=f"iot-bridge cutover wave {wave.name}",
                targetSelection="SNAPSHOT",
                **spec.job_settings(),
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceAlreadyExistsException":
                raise
            _log.info("cutover.job_exists", wave=wave.name, job_id=job_id)  # a restart
        if await store.get_checkpoint(_sent_key(wave.name)) is None:
            await store.set_checkpoint(_sent_key(wave.name), str(time.time()))
        # Keep whatever an operator set meanwhile (abort...), with the job to act on.
        current = await store.get_wave(wave.name)
        await store.update_wave(
            wave.name, state=current.state if current else wave.state, job_id=job_id
        )
        for device_id in moving:
            await store.transition(device_id, Event.JOB_SENT)
        _log.info("cutover.job_sent", wave=wave.name, job_id=job_id, devices=len(moving))

    async def _schedule(
        self, wave: Wave, members: list[WaveDevice], devices: dict[str, Device]
    ) -> list[str] | None:
        """Put the wave's devices in CUTOVER_PENDING; None while one is not mirrored yet."""
        store = self._parts()[0]
        moving: list[str] = []
        for member in members:
            device = devices.get(member.device_id)
            if member.outcome is not None:
                continue
            if device is None or device.state not in (
                _SCHEDULABLE | _NOT_YET | {State.CUTOVER_PENDING}
            ):
                was = device.state if device else "unknown"
                await self._outcome(wave, member.device_id, Outcome.SKIPPED, f"was {was}")
                continue
            if device.state in _NOT_YET:
                _log.info("cutover.device_not_ready", wave=wave.name, device_id=device.device_id)
                return None
            if device.state in _SCHEDULABLE:
                await store.transition(device.device_id, Event.SCHEDULE_CUTOVER)
            moving.append(device.device_id)
        return moving

    async def _unschedule(
        self, wave: Wave, members: list[WaveDevice], devices: dict[str, Device]
    ) -> None:
        """A wave stopped before its job was sent: every device stays on AWS."""
        store = self._parts()[0]
        reason = f"wave {wave.state} before its job was sent; stays on AWS"
        for member in members:
            device = devices.get(member.device_id)
            if member.outcome is not None:
                continue
            if device is not None and device.state is State.CUTOVER_PENDING:
                await store.transition(device.device_id, Event.CANCEL_CUTOVER)
            await self._outcome(wave, member.device_id, Outcome.LEFT_ON_AWS, reason)

    async def _executions(self, job_id: str) -> dict[str, Execution]:
        """Thing name -> its execution (the latest attempt) for every one the job has."""
        iot = self._parts()[1]
        found: dict[str, Execution] = {}
        async for summary in iot.pages(
            "list_job_executions_for_job", "executionSummaries", jobId=job_id
        ):
            name = summary["thingArn"].rsplit("/", 1)[-1]
            execution = summary["jobExecutionSummary"]
            retried = int(execution.get("retryAttempt") or 0)
            found[name] = Execution(execution["status"], retried + 1)
        return found

    async def _judge(
        self,
        wave: Wave,
        spec: WaveSpec,
        members: list[WaveDevice],
        devices: dict[str, Device],
        *,
        stopping: bool,
    ) -> None:
        store = self._parts()[0]
        assert wave.job_id is not None
        executions = await self._executions(wave.job_id)
        self._gauges.executions(wave.name, {d: e.status for d, e in executions.items()})
        arrived = await self._queried(wave.name, wave.job_id)
        sent = float(await store.get_checkpoint(_sent_key(wave.name)) or time.time())
        deadline = sent + spec.rollout_seconds() + spec.device_seconds()
        self._metrics.cutover_wave_deadline.labels(wave=wave.name).set(deadline)
        for member in members:
            device = devices.get(member.device_id)
            if member.outcome is not None or device is None:
                continue
            if device.state is State.CUTOVER_PENDING:  # a restart between the job and here
                await store.transition(device.device_id, Event.JOB_SENT)
            elif device.state in _DECIDED:  # a restart between a verdict and its outcome
                reason = device.reason or "connected to Azure as itself (seen before a restart)"
                await self._outcome(wave, device.device_id, _DECIDED[device.state], reason)
                continue
            elif device.state is not State.CUTTING_OVER:
                continue
            connected = await self._signal_in_use().connected_at(wave.name, device.device_id)
            await self._judge_device(
                wave,
                spec,
                device.device_id,
                executions.get(device.device_id),
                (sent, deadline),
                stopping=stopping,
                arrived=device.device_id in arrived,
                connected=connected,
            )

    async def _queried(self, wave: str, job_id: str) -> set[str]:
        """Arrivals by twin query: every poll while no events are read, otherwise every
        `twin_query_interval` as a safety net (a hub without the connection-state route),
        the first one an interval after the service first looked at the wave."""
        now = time.monotonic()
        last = self._queried_at.setdefault(wave, now)
        interval = self._settings.cutover.twin_query_interval
        if self._signal_in_use().in_use and now - last < interval:
            return set()
        self._queried_at[wave] = now
        return await query_arrivals(self._parts()[2], job_id)

    async def _judge_device(
        self,
        wave: Wave,
        spec: WaveSpec,
        device_id: str,
        execution: Execution | None,
        times: tuple[float, float],
        *,
        stopping: bool,
        arrived: bool,
        connected: float | None,
    ) -> None:
        store, _iot, hub = self._parts()
        assert wave.job_id is not None
        sent, deadline = times
        status = execution.status if execution else None
        # AWS runs a FAILED or TIMED_OUT execution again while attempts are left (not once
        # the job is canceled): that ending is no verdict yet.
        retrying = (
            execution is not None
            and not stopping
            and spec.attempts_left(execution.status, execution.attempt)
        )
        failed = status in _FAILED_EXECUTIONS and not retrying
        # The query is cheap but its index lags; before any other verdict, read the twin.
        # A connection event says when the device came; its twin must still name the job.
        deciding = stopping or failed or time.time() > deadline
        if not arrived and connected is not None:
            arrived = await on_azure(hub, device_id, wave.job_id, connection_seen=True)
        if arrived or (deciding and await on_azure(hub, device_id, wave.job_id)):
            # First the moment, then the state: the relay still carries what AWS delivered
            # before it (the device published there until it switched).
            await record_cut_over(store, device_id, time.time())
            await store.transition(device_id, Event.AZURE_CONNECTED)
            took = max((connected if connected is not None else time.time()) - sent, 0.0)
            how = "connection-state event" if connected is not None else "twin"
            reason = (
                f"connected to Azure as itself {took:.1f} s after the job ({how}) and "
                f"reported migration for job {wave.job_id}"
            )
            await self._outcome(wave, device_id, Outcome.CUT_OVER, reason)
            self._metrics.cutover_time_to_azure.observe(took)
        elif failed and execution is not None:
            attempts = (
                f" on attempt {execution.attempt} of {spec.attempts()}" if spec.retries else ""
            )
            details = await self._details(wave.job_id, device_id)
            reason = f"job execution {execution.status}{attempts}{details}"
            outcome = Outcome.ROLLED_BACK
            if execution.status == "CANCELED" and stopping:
                reason, outcome = (
                    f"wave {wave.state}: job canceled; stays on AWS",
                    Outcome.LEFT_ON_AWS,
                )
            await store.transition(device_id, Event.JOB_FAILED, reason=reason)
            await self._outcome(wave, device_id, outcome, reason)
            if outcome == Outcome.ROLLED_BACK:
                self._rolled_back(f"execution_{execution.status.lower()}")
        elif stopping and (status in {None, "QUEUED"} or wave.state == WaveState.ROLLING_BACK):
            reason = f"wave {wave.state} before the device moved; stays on AWS"
            await store.transition(device_id, Event.JOB_FAILED, reason=reason)
            await self._outcome(wave, device_id, Outcome.LEFT_ON_AWS, reason)
        elif time.time() > deadline:
            said = f"job execution {status}" if status else "no job execution"
            if status == "SUCCEEDED":
                said = "job execution SUCCEEDED, but the device never connected to Azure"
            reason = f"not seen on Azure by the deadline ({said})"
            await store.transition(device_id, Event.CUTOVER_TIMED_OUT, reason=reason)
            await self._outcome(wave, device_id, Outcome.ROLLED_BACK, reason)
            self._rolled_back("claimed_success" if status == "SUCCEEDED" else "deadline")

    def _rolled_back(self, reason: str) -> None:
        self._metrics.cutover_rollbacks.labels(reason=reason).inc()

    async def _details(self, job_id: str, device_id: str) -> str:
        iot = self._parts()[1]
        try:
            found = await iot.call("describe_job_execution", jobId=job_id, thingName=device_id)
        except Gone:
            return ""
        details = found.get("execution", {}).get("statusDetails", {}).get("detailsMap") or {}
        return f" ({', '.join(f'{k}: {v}' for k, v in sorted(details.items()))})" if details else ""

    async def _cancel_job(self, wave: Wave) -> None:
        iot = self._parts()[1]
        if wave.job_id is None:
            return
        job = (await iot.call("describe_job", jobId=wave.job_id))["job"]
        if job["status"] == "IN_PROGRESS":
            await iot.call(
                "cancel_job",
                jobId=wave.job_id,
                reasonCode="IOT_BRIDGE_WAVE_STOPPED",
                comment=f"iot-bridge: wave {wave.state}",
                force=wave.state == WaveState.ROLLING_BACK,
            )
            _log.warning("cutover.job_canceled", wave=wave.name, job_id=wave.job_id)

    async def _outcome(self, wave: Wave, device_id: str, outcome: str, reason: str) -> None:
        await self._parts()[0].record_outcome(wave.name, device_id, outcome, reason)
        self._metrics.cutover_devices.labels(outcome=outcome).inc()
        log = _log.info if outcome == Outcome.CUT_OVER else _log.warning
        log(
            "cutover.device_decided",
            wave=wave.name,
            device_id=device_id,
            outcome=outcome,
            reason=reason,
        )

    async def _maybe_finish(self, wave: Wave, spec: WaveSpec) -> None:
        store = self._parts()[0]
        members = await store.wave_devices(wave.name)
        total = len(members)
        cut = sum(m.outcome == Outcome.CUT_OVER for m in members)
        failed = sum(m.outcome == Outcome.ROLLED_BACK for m in members)
        if wave.state == WaveState.RUNNING and failed > spec.abort_threshold * total:
            reason = (
                f"{failed} of {total} devices rolled back, past the abort threshold "
                f"({spec.abort_threshold:.0%}); the rest stay on AWS"
            )
            await store.update_wave(
                wave.name, state=WaveState.ABORTING, expected=[WaveState.RUNNING], reason=reason
            )
            _log.warning("cutover.wave_aborting", wave=wave.name, reason=reason)
            return
        if any(m.outcome is None for m in members):
            return
        if wave.state == WaveState.RUNNING:
            verdict = "met" if cut >= spec.success_threshold * total else "missed"
            state = WaveState.DONE
            reason = f"{cut} of {total} on Azure; success threshold {verdict}"
        else:
            state = WaveState.ABORTED
            reason = f"{wave.reason or 'stopped by an operator'}; {cut} of {total} on Azure"
        if not await store.update_wave(
            wave.name, state=state, expected=[wave.state], reason=reason
        ):
            return  # an operator moved it meanwhile; the next poll looks again
        if state == WaveState.ABORTED:
            self._metrics.cutover_wave_aborts.labels(wave=wave.name).inc()
        _log.info("cutover.wave_finished", wave=wave.name, state=str(state), reason=reason)

    def _parts(self) -> tuple[Store, AwsApi, IotHubService]:
        if self._store is None or self._iot is None or self._hub is None:
            raise RuntimeError("the cutover service was not started")
        return self._store, self._iot, self._hub


def _sent_key(wave: str) -> str:
    return job_sent_key(wave)
