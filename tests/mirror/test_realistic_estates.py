"""Devices IoT Hub refused, over time: the engine over the real store, in-memory ports."""

from bridge.core.events import ShadowChanged
from bridge.core.machine import State
from bridge.core.view import DeviceView, ShadowView
from tests.core.fakes import MemoryReader, MemoryTarget, ScriptedSource
from tests.mirror.test_engine import running, settle


async def test_a_refused_device_is_tried_again_when_aws_changes_it_and_only_then(store):
    views = {"big": DeviceView("big", thing_version=1, shadows={"": ShadowView(1, {"b": 1})})}
    reader = MemoryReader(views, {})
    target, source = MemoryTarget(reject={"big"}), ScriptedSource()
    async with running(store, target, source, reader=reader) as engine:
        await engine.seed(views.values(), {})
        await settle(engine)
        [problem] = await store.problems(10)
        assert (problem.device_id, problem.state) == ("big", State.FAILED)
        # Passes find it missing on the hub; unchanged, it is not tried (nor said) again.
        for _ in range(2):
            await engine.reconcile()
            await settle(engine)
        assert len(await store.dead_letters(10)) == 1
        # AWS changes it, and this time IoT Hub takes it.
        target._reject.clear()
        source.push(ShadowChanged("big", None, 2, desired={"b": 2}))
        await settle(engine, source)
        assert target.twins["big"]["desired"] == {"": {"b": 2}}
        assert (await store.get_devices(["big"]))["big"].state is State.MIRRORED
        assert await store.problems(10) == []
