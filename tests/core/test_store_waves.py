"""Cutover waves in the store, on both backends: insert once, compare-and-set, outcomes."""

from datetime import UTC, datetime, timedelta

from bridge.core.store import Wave


async def test_waves_are_kept_with_their_devices_and_outcomes(store):
    for device_id in ("w-1", "w-2"):
        await store.add_device(device_id)
    wave = Wave(name="canary", state="planned", spec={"devices": ["w-1", "w-2"]})
    assert await store.add_wave(wave, ["w-1", "w-2"])
    assert not await store.add_wave(wave, ["w-1"])  # one wave per name
    assert await store.get_wave("canary") == wave
    assert await store.get_wave("nope") is None

    assert not await store.update_wave("canary", state="done", expected=["running"])
    assert await store.update_wave("canary", state="running", expected=["planned", "paused"])
    assert await store.update_wave("canary", state="running", job_id="job-1")
    assert await store.update_wave("canary", state="aborting", reason="too many failures")
    [found] = await store.waves()
    assert (found.state, found.job_id, found.reason) == ("aborting", "job-1", "too many failures")

    before = datetime.now(UTC)
    await store.record_outcome("canary", "w-2", "rolled_back", "job execution REJECTED")
    members = await store.wave_devices("canary")
    # When the outcome was written: the cutover report's time to Azure counts from the job.
    decided = members[1].decided_at
    assert decided is not None
    assert decided.tzinfo is not None
    assert before - timedelta(seconds=1) <= decided <= datetime.now(UTC) + timedelta(seconds=1)
    assert [(m.device_id, m.outcome, m.reason) for m in members] == [
        ("w-1", None, None),
        ("w-2", "rolled_back", "job execution REJECTED"),
    ]
