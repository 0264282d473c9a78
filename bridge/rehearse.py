"""`iot-bridge rehearse`: a migration window on the local stand-ins, start to finish.

Starts both stand-ins, builds a realistic estate in the AWS one, then runs what an
operations team runs against the real clouds: discovery, then the plan. Later stages
(mirror, relay, cutover) join as they land. The stand-ins stay up afterwards, with their
settings in the env file, so the team can look around.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from bridge.config import CloudSettings
from bridge.discover import DiscoveryOptions, discover
from bridge.logging import get_logger
from bridge.plan import PlanOptions, build_plan, write_plan
from bridge.sim.envfile import write_env_file
from bridge.sim.estate import EstateSpec, build_estate
from bridge.sim.stack import sim_stack

__all__ = ["RehearsalOptions", "rehearse"]

log = get_logger("rehearse")


@dataclass(frozen=True)
class RehearsalOptions:
    """What to rehearse, and where to put what it produces."""

    things: int = 300
    workdir: Path = Path("rehearsal")
    env_file: Path = Path(".env.sim")
    stay_up: bool = True


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)  # noqa: T201 - the rehearsal talks to its operator


async def rehearse(options: RehearsalOptions) -> int:
    """Run the rehearsal; returns the process exit code."""
    workdir = options.workdir.resolve()
    async with sim_stack(workdir / "state") as stack:
        env = stack.env()
        write_env_file(options.env_file, env, header="Written by `iot-bridge rehearse`.")
        _say(f"1/3 stand-ins up; settings in {options.env_file}")
        aws = stack.aws
        assert aws.shadows is not None
        estate = await asyncio.to_thread(
            build_estate, aws.moto, aws.shadows, EstateSpec(things=options.things)
        )
        _say(f"2/3 estate built: {len(estate.devices)} things in {len(estate.groups)} groups")
        cloud = CloudSettings.model_validate(env)
        inventory_path = workdir / "inventory.json"
        inventory = await discover(
            cloud, inventory_path, DiscoveryOptions(rate_scale=0, resume=False)
        )
        result = build_plan(inventory, PlanOptions())
        written = write_plan(result, workdir / "plan")
        plan = result.plan
        _say(
            f"3/3 discovered {len(inventory.things)} things, {len(inventory.certificates)} "
            f"certificates, {len(inventory.rules)} rules -> {inventory_path}"
        )
        _say(f"    plan: {len(plan.devices)} devices, {len(plan.gaps)} gaps -> {written[0].parent}")
        if options.stay_up:
            _say("stand-ins stay up for a look around; press Ctrl-C to stop")
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            try:
                await stop.wait()
            finally:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(sig)
    log.info("rehearse.finished", workdir=str(workdir))
    return 0
