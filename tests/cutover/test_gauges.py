"""The per-wave gauges follow the store: outcomes, state, executions of active waves only."""

from bridge.core.store import Wave, open_store
from bridge.cutover.gauges import WaveGauges
from bridge.metrics import Metrics


async def test_gauges_follow_the_store_and_stop_reading_finished_waves(tmp_path):
    metrics = Metrics.create()
    gauges = WaveGauges(metrics)
    sample = metrics.registry.get_sample_value
    spec = {"devices": ["d-1", "d-2", "d-3"]}
    async with open_store(f"sqlite:///{tmp_path / 'bridge.db'}") as store:
        await store.add_wave(Wave(name="w1", state="running", spec=spec), spec["devices"])
        await store.record_outcome("w1", "d-1", "cut_over", "on Azure")
        await gauges.export(store, await store.waves())
        assert sample("bridge_cutover_wave_devices", {"wave": "w1", "outcome": "cut_over"}) == 1
        assert sample("bridge_cutover_wave_devices", {"wave": "w1", "outcome": "pending"}) == 2
        assert sample("bridge_cutover_wave_devices", {"wave": "w1", "outcome": "skipped"}) == 0
        assert sample("bridge_cutover_wave_state", {"wave": "w1", "state": "running"}) == 1
        assert sample("bridge_cutover_wave_state", {"wave": "w1", "state": "done"}) == 0
        # Zero from the first look, so an abort later shows as an increase.
        assert sample("bridge_cutover_wave_aborts_total", {"wave": "w1"}) == 0

        gauges.executions("w1", {"d-1": "SUCCEEDED", "d-2": "IN_PROGRESS", "d-3": "IN_PROGRESS"})
        assert sample("bridge_cutover_job_executions", {"wave": "w1", "status": "in_progress"}) == 2
        assert sample("bridge_cutover_job_executions", {"wave": "w1", "status": "queued"}) == 0

        await store.record_outcome("w1", "d-2", "rolled_back", "job execution FAILED")
        await store.record_outcome("w1", "d-3", "left_on_aws", "wave aborting")
        await store.update_wave("w1", state="aborted")
        await gauges.export(store, await store.waves())
        assert sample("bridge_cutover_wave_devices", {"wave": "w1", "outcome": "pending"}) == 0
        assert sample("bridge_cutover_wave_devices", {"wave": "w1", "outcome": "left_on_aws"}) == 1
        assert sample("bridge_cutover_wave_state", {"wave": "w1", "state": "aborted"}) == 1
        assert sample("bridge_cutover_wave_state", {"wave": "w1", "state": "running"}) == 0
        # Not active any more: its executions are not current, so they are not shown.
        assert (
            sample("bridge_cutover_job_executions", {"wave": "w1", "status": "in_progress"}) is None
        )

        # A finished wave is not read again (it cannot change): its counts stay.
        await store.record_outcome("w1", "d-3", "cut_over", "changed behind the bridge's back")
        await gauges.export(store, await store.waves())
        assert sample("bridge_cutover_wave_devices", {"wave": "w1", "outcome": "left_on_aws"}) == 1
