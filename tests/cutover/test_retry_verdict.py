"""A failed execution with attempts left is no verdict: the service waits for the last one.

The AWS stand-in queues a retry in the same step as the failure, so the end-to-end test
(`test_signals.py`) never lists a FAILED execution that AWS is about to retry. AWS itself
may list it so for a while; here AWS's listing is a fake that does, and the service's own
store (SQLite) and wave logic are real.
"""

import time

import pytest

from bridge.config import CloudSettings, Settings
from bridge.core.machine import Event, State
from bridge.core.store import Wave, open_store
from bridge.cutover.arrivals import Arrivals
from bridge.cutover.service import CutoverService
from bridge.cutover.wave import WaveSpec, WaveState, job_id_for, job_sent_key
from bridge.errors import NotFound
from bridge.metrics import Metrics

JOB = job_id_for("w")


class _Aws:
    """ListJobExecutionsForJob as AWS answers it, set by the test."""

    def __init__(self):
        self.listed = {}  # thing -> (status, retryAttempt)
        self.calls = []

    async def pages(self, operation, _key, **_args):
        assert operation == "list_job_executions_for_job"
        for thing, (status, retried) in self.listed.items():
            summary = {"status": status, "retryAttempt": retried}
            yield {
                "thingArn": f"arn:aws:iot:us-east-1:1:thing/{thing}",
                "jobExecutionSummary": summary,
            }

    async def call(self, operation, **_args):
        self.calls.append(operation)
        if operation == "describe_job":
            return {"job": {"status": "IN_PROGRESS"}}
        if operation == "cancel_job":
            return {}
        assert operation == "describe_job_execution"
        return {"execution": {"statusDetails": {"detailsMap": {"reason": "no route to Azure"}}}}


class _Hub:
    """No device ever shows up on Azure."""

    async def query(self, _sql):
        for row in ():
            yield row

    async def get_twin(self, device_id):
        raise NotFound(404, "DeviceNotFound", f"no twin for {device_id}")


@pytest.fixture
async def service(tmp_path):
    async with open_store(f"sqlite:///{tmp_path / 'bridge.db'}") as store:
        for device in ("d1", "d2"):
            await store.add_device(device)
            for event in (Event.PROVISION, Event.PROVISIONED, Event.SCHEDULE_CUTOVER):
                await store.transition(device, event)
            await store.transition(device, Event.JOB_SENT)
        spec = WaveSpec(devices=["d1", "d2"], retries=2, deadline_seconds=600)
        wave = Wave(name="w", state=WaveState.RUNNING, spec=spec.model_dump(mode="json"))
        await store.add_wave(wave, spec.devices)
        await store.update_wave("w", state=WaveState.RUNNING, job_id=JOB)
        await store.set_checkpoint(job_sent_key("w"), str(time.time()))
        cutover = CutoverService(CloudSettings(), Settings(), metrics=Metrics.create())
        cutover._store, cutover._iot, cutover._hub = store, _Aws(), _Hub()
        cutover._arrivals = Arrivals(store, None, why_not="not read in this test")
        yield cutover, store


async def _look(cutover, store, listed):
    cutover._iot.listed = listed
    await cutover.step(await store.get_wave("w"))
    return {m.device_id: (m.outcome, m.reason) for m in await store.wave_devices("w")}


async def test_failures_with_attempts_left_wait_and_the_last_one_decides(service):
    cutover, store = service
    # Listed FAILED (or TIMED_OUT) on attempts 1 and 2 of 3: AWS will run them again.
    for attempt in (0, 1):
        found = await _look(
            cutover, store, {"d1": ("FAILED", attempt), "d2": ("TIMED_OUT", attempt)}
        )
        assert found == {"d1": (None, None), "d2": (None, None)}
    devices = await store.get_devices(["d1", "d2"])
    assert {d.state for d in devices.values()} == {State.CUTTING_OVER}
    # The third attempt is the last: now its ending is the verdict, naming the attempts.
    found = await _look(cutover, store, {"d1": ("FAILED", 2), "d2": ("QUEUED", 2)})
    assert found["d1"] == (
        "rolled_back",
        "job execution FAILED on attempt 3 of 3 (reason: no route to Azure)",
    )
    assert found["d2"] == (None, None)
    # REJECTED is never retried by AWS: decided on any attempt.
    found = await _look(cutover, store, {"d2": ("REJECTED", 1)})
    assert found["d2"][0] == "rolled_back"
    assert found["d2"][1].startswith("job execution REJECTED on attempt 2 of 3")


async def test_a_stopping_wave_decides_failures_at_once(service):
    cutover, store = service
    await store.update_wave("w", state=WaveState.ABORTING)
    found = await _look(cutover, store, {"d1": ("FAILED", 0), "d2": ("QUEUED", 0)})
    # The job is canceled, so AWS runs no further attempt.
    assert found["d1"][0] == "rolled_back"
    assert found["d1"][1].startswith("job execution FAILED on attempt 1 of 3")
    assert found["d2"][0] == "left_on_aws"
    assert "cancel_job" in cutover._iot.calls


def test_each_attempt_has_the_wave_deadline():
    spec = WaveSpec(devices=["d1"], retries=2, deadline_seconds=120)
    assert spec.device_seconds() == 360
    settings = spec.job_settings()["jobExecutionsRetryConfig"]
    assert settings == {"criteriaList": [{"failureType": "ALL", "numberOfRetries": 2}]}
    assert "jobExecutionsRetryConfig" not in WaveSpec(devices=["d1"]).job_settings()
