"""`iot-bridge run` killed with SIGKILL mid-wave: the next one finishes it, nothing twice."""

import os
import secrets
import socket
import sqlite3

import pytest

from bridge_sim.fleet import Fleet
from tests.cutover.conftest import iot_client, until
from tests.cutover.test_waves import _cli, _wave
from tests.daemon.children import Daemon

pytestmark = pytest.mark.timeout(300)


def write_bridge_env(tmp_path, env, dsn):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = {
        **env,
        "BRIDGE_STORE__DSN": dsn,
        "BRIDGE_HTTP__PORT": str(port),
        "BRIDGE_MIRROR__CLIENT_ID": f"iot-bridge-{secrets.token_hex(3)}",
        "BRIDGE_MIRROR__AWS_RATE_SCALE": "0",
        "BRIDGE_MIRROR__RECONCILE_INTERVAL": "0",
        "BRIDGE_CUTOVER__POLL_INTERVAL": "0.3",
        "BRIDGE_LOG_LEVEL": os.environ.get("FAULTS_LOG_LEVEL", "WARNING"),
    }
    path = tmp_path / "bridge.env"
    path.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
    return path


def _count(path, sql):
    with sqlite3.connect(path) as db:
        try:
            return db.execute(sql).fetchone()[0]
        except sqlite3.OperationalError:  # not created or migrated yet
            return 0


async def test_a_wave_killed_mid_flight_is_finished_by_the_next_daemon(stack, tmp_path):
    env = stack.env()
    db = tmp_path / "bridge.db"
    dsn = f"sqlite:///{db}"
    faults = {3: ["vanish"], 4: ["reject"]}
    with (tmp_path / "daemon.log").open("w") as log:
        daemon = Daemon(write_bridge_env(tmp_path, env, dsn), log)
        async with Fleet(env, tmp_path / "fleet", devices=5, prefix="k9", misbehaving=faults):
            daemon.start()
            try:
                mirrored = "SELECT COUNT(*) FROM devices WHERE state = 'mirrored'"
                await until(lambda: _count(db, mirrored) == 5, what="the fleet mirrored")
                await _cli(dsn, "plan", "w", "--devices", ",".join(f"k9-{i:02d}" for i in range(5)),
                           "--deadline", "10", "--abort-threshold", "1")  # fmt: skip
                await _cli(dsn, "start", "w")
                sent = "SELECT COUNT(*) FROM waves WHERE job_id IS NOT NULL"
                await until(lambda: _count(db, sent) == 1, what="the job sent")
                daemon.kill()
                daemon.start()
                wave = await until(lambda: _wave(dsn, "w", "done", "aborted"), what="the wave")
                twins = [stack.iothub.registry.twin(f"k9-{i:02d}") for i in range(5)]
            finally:
                code = daemon.stop()
    assert code == 0, (tmp_path / "daemon.log").read_text()[-3000:]
    outcomes = {d["device_id"]: (d["state"], d["outcome"]) for d in wave["devices"]}
    assert outcomes == {
        "k9-00": ("cut_over", "cut_over"),
        "k9-01": ("cut_over", "cut_over"),
        "k9-02": ("cut_over", "cut_over"),
        "k9-03": ("rolled_back", "rolled_back"),
        "k9-04": ("rolled_back", "rolled_back"),
    }
    assert all(d["reason"] for d in wave["devices"])
    iot = iot_client(env)
    jobs = [j["jobId"] for j in iot.list_jobs()["jobs"] if j["jobId"].startswith("iot-bridge-")]
    assert jobs == [wave["job_id"]]  # one job: no device was sent the migration twice
    for i in range(5):
        executions = iot.list_job_executions_for_thing(thingName=f"k9-{i:02d}")
        assert len(executions["executionSummaries"]) == 1
    assert [t["connectionState"] for t in twins] == ["Connected"] * 3 + ["Disconnected"] * 2
