"""Waves end to end: stand-ins, the daemon (mirror + cutover), a fleet running the agent.

The operator's side goes through the real command line (`iot-bridge cutover ...`); the
verdicts are checked on both clouds, not only in the bridge's store.
"""

import asyncio
import contextlib
import secrets

import pytest
from typer.testing import CliRunner

from bridge.cli import app
from bridge.config import CloudSettings, Settings
from bridge.core.machine import State
from bridge.core.milestones import cut_over_at
from bridge.core.store import open_store
from bridge.cutover.operator import wave_status
from bridge.daemon.app import RunOptions, run_daemon
from bridge.errors import StoreError
from bridge.metrics import Metrics
from bridge_sim.fleet import Fleet
from bridge_sim.ports import free_port
from tests.cutover.conftest import iot_client, until, watch

# Stand-ins, a daemon and a fleet of agents share two cores with whatever else runs.
pytestmark = pytest.mark.timeout(300)


def _settings(dsn):
    return Settings(
        store={"dsn": dsn},
        http={"port": free_port()},
        mirror={
            "client_id": f"iot-bridge-{secrets.token_hex(3)}",
            "aws_rate_scale": 0,
            "reconcile_interval": 0,
        },
        cutover={"poll_interval": 0.3},
    )


@contextlib.asynccontextmanager
async def _daemon(env, settings, metrics=None):
    metrics = metrics or Metrics.create()
    task = asyncio.create_task(
        run_daemon(CloudSettings(**env), settings, RunOptions(), metrics=metrics)
    )
    unwatch = watch(task)
    try:
        yield task
    finally:
        unwatch()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _cli(dsn, *args):
    result = await asyncio.to_thread(
        CliRunner().invoke, app, ["cutover", *args], env={"BRIDGE_STORE__DSN": dsn}
    )
    assert result.exit_code == 0, result.output
    return result.output


async def _states(dsn, names):
    # The daemon may be creating the store right then: SQLite refuses a second connection
    # switching to WAL at that moment ("database is locked"); that is "not yet".
    try:
        async with open_store(dsn) as store:
            return {d.device_id: d for d in (await store.get_devices(names)).values()}
    except StoreError:
        return {}


async def _all_in(dsn, names, state):
    found = await _states(dsn, names)
    return len(found) == len(names) and all(d.state is state for d in found.values())


async def _wave(dsn, name, *states):
    # The store, read as `cutover status --json` does (CliRunner's output also catches
    # the log lines of every thread, so the JSON is read here, the text once below).
    async with open_store(dsn) as store:
        waves = await wave_status(store)
    [wave] = [w for w in waves if w["name"] == name]
    return wave if wave["state"] in states else None


async def test_healthy_devices_cut_over_and_a_rejecting_one_is_rolled_back(stack, tmp_path):
    env = stack.env()
    dsn = f"sqlite:///{tmp_path / 'bridge.db'}"
    faults = {2: ["reject"]}
    metrics = Metrics.create()
    async with (
        Fleet(env, tmp_path / "fleet", devices=5, prefix="cw", misbehaving=faults) as fleet,
        _daemon(env, _settings(dsn), metrics),
    ):
        names = fleet.names
        await until(lambda: _all_in(dsn, names, State.MIRRORED), what="the fleet mirrored")
        await _cli(dsn, "plan", "canary", "--devices", ",".join(names), "--deadline", "60")
        await _cli(dsn, "start", "canary")
        wave = await until(lambda: _wave(dsn, "canary", "done", "aborted"), what="the wave")
        text = await _cli(dsn, "status")

        outcomes = {
            d["device_id"]: (d["state"], d["outcome"], d["reason"]) for d in wave["devices"]
        }
        bad = "cw-02"
        assert outcomes[bad][:2] == ("rolled_back", "rolled_back")
        assert outcomes[bad][2] == "job execution REJECTED (reason: device refused the migration)"
        for name in set(names) - {bad}:
            assert outcomes[name][:2] == ("cut_over", "cut_over"), outcomes[name]
            # Proof on Azure itself: connected as itself, with its own reported section.
            twin = stack.iothub.registry.twin(name)
            assert twin["connectionState"] == "Connected"
            assert twin["properties"]["reported"]["migration"]["status"] == "migrated"
            assert fleet.devices[name].agent.cloud == "azure"
        assert wave["state"] == "done"
        assert wave["reason"] == "4 of 5 on Azure; success threshold missed"
        assert stack.iothub.registry.twin(bad)["connectionState"] != "Connected"
        assert fleet.devices[bad].agent.cloud == "aws"
        # The rejecting device keeps working on AWS.
        assert await asyncio.to_thread(fleet.devices[bad].agent.send_telemetry, {"t": 1}) == "aws"
        # The job itself, as AWS sees it.
        iot = iot_client(env)
        execution = iot.describe_job_execution(jobId=wave["job_id"], thingName=bad)["execution"]
        assert execution["status"] == "REJECTED"
        assert "cut_over 4" in text
        assert "rolled_back 1" in text
        # The same, as Prometheus sees it (the gauges follow the store after each poll).
        sample = metrics.registry.get_sample_value
        await until(
            lambda: sample("bridge_cutover_wave_state", {"wave": "canary", "state": "done"}) == 1,
            what="the wave's gauges",
        )
        by_outcome = {"wave": "canary", "outcome": "cut_over"}
        assert sample("bridge_cutover_wave_devices", by_outcome) == 4
        assert sample("bridge_cutover_wave_devices", {**by_outcome, "outcome": "pending"}) == 0
        assert sample("bridge_cutover_rollbacks_total", {"reason": "execution_rejected"}) == 1
        assert sample("bridge_cutover_rollbacks_total", {"reason": "deadline"}) == 0
        assert sample("bridge_cutover_time_to_azure_seconds_count") == 4
        assert 0 < sample("bridge_cutover_time_to_azure_seconds_sum") < 4 * 60
        assert sample("bridge_cutover_wave_aborts_total", {"wave": "canary"}) == 0
        # The moment of each verdict is kept: the relay still carries what AWS delivered
        # before it. None for the device that stayed.
        async with open_store(dsn) as store:
            moments = {name: await cut_over_at(store, name) for name in names}
        assert moments[bad] is None
        assert all(moments[n] is not None for n in set(names) - {bad})
        # A finished wave's executions are no longer current, so no longer exported.
        assert (
            sample("bridge_cutover_job_executions", {"wave": "canary", "status": "queued"}) is None
        )


async def test_a_wave_past_its_abort_threshold_stops_and_leaves_the_rest_on_aws(stack, tmp_path):
    env = stack.env()
    dsn = f"sqlite:///{tmp_path / 'bridge.db'}"
    faults = {0: ["reject"], 1: ["reject"]}
    metrics = Metrics.create()
    async with (
        Fleet(env, tmp_path / "fleet", devices=5, prefix="ab", misbehaving=faults) as fleet,
        _daemon(env, _settings(dsn), metrics),
    ):
        names = fleet.names
        await until(lambda: _all_in(dsn, names, State.MIRRORED), what="the fleet mirrored")
        # Two executions a minute: the first two devices get the job, the rest wait.
        await _cli(
            dsn,
            "plan",
            "wave1",
            "--devices",
            ",".join(names),
            "--abort-threshold",
            "0.3",
            "--max-per-minute",
            "2",
        )
        await _cli(dsn, "start", "wave1")
        wave = await until(lambda: _wave(dsn, "wave1", "done", "aborted"), what="the wave")
        assert wave["state"] == "aborted"
        assert wave["reason"].startswith("2 of 5 devices rolled back, past the abort threshold")
        outcomes = {d["device_id"]: (d["state"], d["outcome"]) for d in wave["devices"]}
        assert outcomes["ab-00"] == outcomes["ab-01"] == ("rolled_back", "rolled_back")
        for name in ("ab-02", "ab-03", "ab-04"):
            assert outcomes[name] == ("rolled_back", "left_on_aws")
            assert fleet.devices[name].agent.cloud == "aws"
            assert stack.iothub.registry.twin(name)["connectionState"] != "Connected"
            assert await asyncio.to_thread(fleet.devices[name].agent.send_telemetry, {}) == "aws"
        job = iot_client(env).describe_job(jobId=wave["job_id"])["job"]
        assert job["status"] == "CANCELED"
        sample = metrics.registry.get_sample_value
        assert sample("bridge_cutover_wave_aborts_total", {"wave": "wave1"}) == 1
        assert sample("bridge_cutover_rollbacks_total", {"reason": "execution_rejected"}) == 2
        await until(
            lambda: (
                sample("bridge_cutover_wave_devices", {"wave": "wave1", "outcome": "left_on_aws"})
                == 3
            ),
            what="the wave's gauges",
        )


async def test_job_status_alone_proves_nothing_and_a_restarted_daemon_finishes_the_wave(
    stack, tmp_path
):
    env = stack.env()
    dsn = f"sqlite:///{tmp_path / 'bridge.db'}"
    faults = {1: ["vanish"], 2: ["claim-success"], 3: ["ignore-jobs"]}
    async with Fleet(env, tmp_path / "fleet", devices=4, prefix="dl", misbehaving=faults) as fleet:
        names = fleet.names
        async with _daemon(env, _settings(dsn)):
            await until(lambda: _all_in(dsn, names, State.MIRRORED), what="the fleet mirrored")
            await _cli(
                dsn, "plan", "w", "--devices", ",".join(names), "--deadline", "8",
                "--abort-threshold", "1",
            )  # fmt: skip
            await _cli(dsn, "start", "w")
            await until(lambda: _all_in(dsn, names, State.CUTTING_OVER), what="the job sent")
        # The daemon is gone mid-wave (its store says where the wave stood); a new one
        # picks the wave up, and the job is not sent twice.
        metrics = Metrics.create()
        async with _daemon(env, _settings(dsn), metrics):
            wave = await until(lambda: _wave(dsn, "w", "done", "aborted"), what="the wave")
        outcomes = {d["device_id"]: (d["state"], d["reason"]) for d in wave["devices"]}
        assert outcomes["dl-00"][0] == "cut_over"
        assert outcomes["dl-01"] == (
            "rolled_back",
            "not seen on Azure by the deadline (job execution IN_PROGRESS)",
        )
        assert outcomes["dl-02"] == (
            "rolled_back",
            (
                "not seen on Azure by the deadline (job execution SUCCEEDED, but the device "
                "never connected to Azure)"
            ),
        )
        assert outcomes["dl-03"] == (
            "rolled_back",
            "not seen on Azure by the deadline (job execution QUEUED)",
        )
        assert wave["reason"] == "1 of 4 on Azure; success threshold missed"
        rollbacks = {
            reason: metrics.registry.get_sample_value(
                "bridge_cutover_rollbacks_total", {"reason": reason}
            )
            for reason in ("deadline", "claimed_success", "execution_timed_out")
        }
        assert rollbacks == {"deadline": 2, "claimed_success": 1, "execution_timed_out": 0}
        jobs = iot_client(env).list_jobs()["jobs"]
        assert [j["jobId"] for j in jobs if j["jobId"].startswith("iot-bridge-cutover-")] == [
            wave["job_id"]
        ]
        assert fleet.devices["dl-00"].agent.cloud == "azure"


async def test_rollback_stops_a_wave_and_keeps_devices_not_on_azure_on_aws(stack, tmp_path):
    env = stack.env()
    dsn = f"sqlite:///{tmp_path / 'bridge.db'}"
    async with (
        Fleet(env, tmp_path / "fleet", devices=2, prefix="rb", misbehaving={1: ["vanish"]}),
        _daemon(env, _settings(dsn)),
    ):
        names = ["rb-00", "rb-01"]
        await until(lambda: _all_in(dsn, names, State.MIRRORED), what="the fleet mirrored")
        await _cli(dsn, "plan", "r", "--devices", "rb-00,rb-01", "--deadline", "600")
        await _cli(dsn, "start", "r")
        await until(lambda: _all_in(dsn, ["rb-00"], State.CUT_OVER), what="rb-00 on Azure")
        await _cli(dsn, "rollback", "r")
        wave = await until(lambda: _wave(dsn, "r", "aborted"), what="the wave rolled back")
    outcomes = {d["device_id"]: (d["state"], d["outcome"], d["reason"]) for d in wave["devices"]}
    assert outcomes["rb-00"][:2] == ("cut_over", "cut_over")  # already on Azure: stays there
    assert outcomes["rb-01"] == (
        "rolled_back",
        "left_on_aws",
        "wave rolling_back: job canceled; stays on AWS",
    )
    job = iot_client(env).describe_job(jobId=wave["job_id"])["job"]
    assert job["status"] == "CANCELED"
