"""AWS IoT Jobs for the local stand-in: moto stores the jobs, this engine runs them.

Control-plane calls reach moto over HTTP and are completed by hooks (jobs_control);
device requests arrive from MQTT through `handle` (jobs_device); `run` paces rollouts
and times executions out. State lives in jobs_core; pure rules in jobs_machine and
jobs_rollout; registry reads in jobs_targets; topics and payloads in jobs_wire.

Wiring: `engine.install()` before serving, subscribe the broker client to
`JobsEngine.SUBSCRIPTIONS` and pass each message to `await engine.handle(topic, payload)`,
and keep `engine.run()` as a task for the stand-in's lifetime.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from bridge.logging import get_logger
from bridge_sim.aws.jobs_control import ControlPlaneHooks
from bridge_sim.aws.jobs_core import JobsCore
from bridge_sim.aws.jobs_device import DeviceRequests
from bridge_sim.aws.jobs_http import JobsDataApi
from bridge_sim.aws.jobs_wire import parse_topic

if TYPE_CHECKING:
    from collections.abc import Callable

    from bridge_sim.aws.moto_server import MotoServer

__all__ = ["JobsEngine"]

log = get_logger("sim.aws.jobs")


class JobsEngine:
    """Executions, rollout, timeouts, abort and the device MQTT API on top of moto."""

    SUBSCRIPTIONS: tuple[str, ...] = (
        "$aws/things/+/jobs/get",
        "$aws/things/+/jobs/start-next",
        "$aws/things/+/jobs/+/get",
        "$aws/things/+/jobs/+/update",
    )

    def __init__(
        self,
        *,
        moto: MotoServer,
        publish: Callable[[str, bytes], None],
        clock: Callable[[], float] = time.time,
        tick_interval: float = 1.0,
    ) -> None:
        self._moto = moto
        self._tick_interval = tick_interval
        self._core = JobsCore(lambda: moto.iot, publish, clock)
        self._installed = False
        self._control = ControlPlaneHooks(self._core)
        self._devices = DeviceRequests(self._core)

    def install(self) -> None:
        """Register the control-plane hooks on moto's IoT backend and serve the
        iot-jobs-data HTTPS API on moto's port; call after moto.start()."""
        if self._installed:
            return
        self._control.install(self._moto.iot_hooks)
        self._moto.serve(JobsDataApi.SIGNING_NAME, JobsDataApi(self._moto.lock, self._devices))
        self._installed = True

    async def handle(self, topic: str, payload: bytes) -> None:
        """Answer one device request received over MQTT; bad requests never raise."""
        request = parse_topic(topic)
        if request is None:
            log.debug("sim.aws.jobs_topic_ignored", topic=topic)
            return
        try:
            with self._moto.lock:
                self._devices.handle(request, payload)
        except Exception:
            log.exception("sim.aws.jobs_device_request_failed", topic=topic)

    def tick(self) -> None:
        """One pass of rollout pacing and timeouts; `run` calls it every tick interval."""
        with self._moto.lock:
            self._core.tick()

    async def run(self) -> None:
        """Tick until cancelled."""
        while True:
            try:
                self.tick()
            except Exception:
                log.exception("sim.aws.jobs_tick_failed")
            await asyncio.sleep(self._tick_interval)
