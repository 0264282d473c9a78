"""`iot-bridge sim up`: every stand-in in one process, and their settings in one file."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from bridge.logging import get_logger
from bridge_sim.aws.standin import AwsStandIn
from bridge_sim.envfile import is_secret, write_env_file
from bridge_sim.estate import EstateSpec, build_estate
from bridge_sim.iothub.emulator import IotHubEmulator
from bridge_sim.iothub.routing import RoutingConfig, load_tfvars

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ["SimStack", "run_until_interrupted", "sim_stack"]

log = get_logger("sim")


class SimStack:
    """The running stand-ins."""

    def __init__(self, aws: AwsStandIn, iothub: IotHubEmulator) -> None:
        self.aws = aws
        self.iothub = iothub

    def env(self) -> dict[str, str]:
        """Every setting, under the names the bridge reads for the real clouds.

        SIM_* names exist only for the stand-ins (plain listeners for tools).
        """
        assert self.aws.broker is not None
        return {
            **self.aws.env(),
            **self.iothub.env(),
            "SIM_AWS_MQTT_PLAIN": f"{self.aws.host}:{self.aws.broker.plain_port}",
        }


@contextlib.asynccontextmanager
async def sim_stack(
    state_dir: Path,
    *,
    region: str = "us-east-1",
    registry_events: bool = True,
    routing: RoutingConfig | None = None,
) -> AsyncIterator[SimStack]:
    """Start every stand-in under `state_dir` and stop them on exit.

    `registry_events=False` starts AWS as a new account: registry events off until enabled.
    `routing` gives the IoT Hub emulator routes and endpoints (`load_tfvars` reads a plan's).
    """
    async with (
        AwsStandIn(
            workdir=state_dir / "aws", region=region, registry_events=registry_events
        ) as aws,
        IotHubEmulator(workdir=state_dir / "iothub", routing=routing) as iothub,
    ):
        yield SimStack(aws, iothub)


async def _populate(stack: SimStack, things: int) -> None:
    aws = stack.aws
    assert aws.shadows is not None
    log.info("sim.estate_building", things=things)
    estate = await asyncio.to_thread(build_estate, aws.moto, aws.shadows, EstateSpec(things=things))
    log.info("sim.estate_built", things=len(estate.devices), groups=len(estate.groups))


async def run_until_interrupted(
    *, env_file: Path, state_dir: Path | None, things: int = 0, routes: Path | None = None
) -> None:
    """Run the stand-ins in the foreground until SIGINT or SIGTERM; `routes`: a plan's tfvars."""
    routing = load_tfvars(routes) if routes is not None else None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    with contextlib.ExitStack() as cleanup:
        if state_dir is None:
            state_dir = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="iot-sim-")))
        async with sim_stack(state_dir, routing=routing) as stack:
            if things:
                await _populate(stack, things)
            env = stack.env()
            write_env_file(
                env_file, env, header="Written by `iot-bridge sim up`; valid while it runs."
            )
            width = max(map(len, env))
            print(f"stand-ins are up; settings written to {env_file}", file=sys.stderr)  # noqa: T201
            for key, value in env.items():
                shown = "**********" if is_secret(key) else value
                print(f"  {key:<{width}}  {shown}", file=sys.stderr)  # noqa: T201
            print("press Ctrl-C to stop", file=sys.stderr)  # noqa: T201
            await stop.wait()
            log.info("sim.stopping")
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.remove_signal_handler(sig)
