"""A simulated fleet: devices with their own AWS certificates running the migration agent.

Each device is a thing registered with the AWS stand-in through boto3 (its own
AWS-issued certificate, the usual per-thing policy) that runs the reference Python agent
(`firmware_patches/agents/python/agent.py`), publishes temperature readings on its
current cloud at a set rate and, when asked, reports its shadow's state now and then and
answers desired changes (`bridge_sim.fleet_shadow`). Some can be told to misbehave:

- `reject`: rejects the migration job;
- `vanish`: takes the job and is never heard from again (no Azure, no AWS);
- `azure-unreachable`: cannot reach Azure, reports FAILED at its fallback deadline, stays on AWS;
- `ignore-jobs`: old firmware that never listens to jobs;
- `claim-success`: marks the job SUCCEEDED without ever going to Azure.

A small fleet runs in this process; a large one is sharded over child processes
(`bridge_sim.fleet_child`), about `DEVICES_PER_PROCESS` devices each, because one process
cannot connect a thousand devices to Azure in time (see that module). Either way the fleet
keeps each device's readings and final state here, in `devices`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import boto3

from bridge.logging import get_logger
from bridge_sim.errors import SimulatorError
from bridge_sim.fleet_process import ShardProcess
from bridge_sim.fleet_shadow import KNOWN_KEYS
from bridge_sim.fleet_shard import AGENT_PATH, Reading, Shard, load_agent

__all__ = [
    "AGENT_PATH",
    "DEVICES_PER_PROCESS",
    "Fleet",
    "FleetDevice",
    "Reading",
    "default_processes",
    "load_agent",
]

DEVICES_PER_PROCESS = 125
_log = get_logger("sim.fleet")


def default_processes(devices: int) -> int:
    """One process up to `DEVICES_PER_PROCESS` devices, then one more per as many, at most
    four per core: beyond that the children only take turns on the cores."""
    cap = 4 * (os.cpu_count() or 1)
    return max(1, min(cap, math.ceil(devices / DEVICES_PER_PROCESS)))


# What an estate's telemetry rule looks like: discovery finds it, the plan translates it to a
# route, and the relay learns from it which topic level names the device.
_RULE = {
    "sql": "SELECT *, topic(2) AS device FROM 'dt/+'",
    "awsIotSqlVersion": "2016-03-23",
    "ruleDisabled": False,
    "actions": [
        {
            "timestream": {
                "roleArn": "arn:aws:iam::123456789012:role/fleet-timestream",
                "databaseName": "fleet",
                "tableName": "telemetry",
                "dimensions": [{"name": "device", "value": "${topic(2)}"}],
            }
        }
    ],
}


def _policy(region: str, account: str) -> str:
    arn = f"arn:aws:iot:{region}:{account}"
    thing = "${iot:Connection.Thing.ThingName}"
    statements = [
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{arn}:client/{thing}"},
        {
            "Effect": "Allow",
            "Action": ["iot:Publish", "iot:Receive"],
            "Resource": [f"{arn}:topic/$aws/things/{thing}/*", f"{arn}:topic/dt/{thing}"],
        },
        {
            "Effect": "Allow",
            "Action": "iot:Subscribe",
            "Resource": f"{arn}:topicfilter/$aws/things/{thing}/*",
        },
    ]
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


@dataclass
class FleetDevice:
    """One simulated device: what it sent where, and how it ended.

    `agent` is the agent itself when the device runs in this process, None in a child.
    """

    name: str
    faults: list[str]
    agent: Any = None
    process: int = 0  # 0: this process; n: the fleet's n-th child
    sent: Counter[str] = field(default_factory=Counter)  # cloud -> readings sent
    readings: list[Reading] = field(default_factory=list)
    cloud: str = "aws"  # where the agent was when last asked
    outcome: dict[str, Any] | None = None  # the agent's last job result
    shadow: Counter[str] = field(default_factory=Counter)  # "reported/aws" -> updates...


class Fleet:
    """N devices on the AWS stand-in, each with its agent and telemetry loop.

    Args:
        env: The stand-ins' settings (`SimStack.env()`).
        workdir: Where certificates, agent state files and child logs go.
        devices: How many devices.
        prefix: Thing name prefix (`<prefix>-00`, `<prefix>-01`...).
        misbehaving: Device index -> fault names (see the module docstring).
        telemetry_interval: Seconds between readings of one device; 0 sends none.
        telemetry_at_start: Start the readings on entry; else `start_telemetry()` does.
        shadow_interval: Seconds between a device's reported-state updates while the
            readings run; 0 for none.
        desired_interval: Seconds between two desired changes an operator makes on AWS
            (each to one device, on a key the devices know) while the readings run; 0
            for none.
        processes: Processes to run the devices in; 1 runs them in this one; None picks
            `default_processes(devices)`.
        operator_targets: Returns the devices the operator may change now (default:
            all). The rehearsal leaves out devices about to be finalized: from then on
            their twins are Azure's, and AWS-side changes no longer reach them.
    """

    def __init__(
        self,
        env: Mapping[str, str],
        workdir: Path,
        *,
        devices: int,
        prefix: str = "dev",
        misbehaving: Mapping[int, list[str]] | None = None,
        telemetry_interval: float = 1.0,
        telemetry_at_start: bool = True,
        shadow_interval: float = 0.0,
        desired_interval: float = 0.0,
        processes: int | None = None,
        operator_targets: Callable[[list[str]], Awaitable[list[str]]] | None = None,
    ) -> None:
        if devices < 1:
            raise ValueError("a fleet needs at least one device")
        self._env = dict(env)
        self._workdir = workdir
        self._names = [f"{prefix}-{i:02d}" for i in range(devices)]
        self._faults = {self._names[i]: list(f) for i, f in (misbehaving or {}).items()}
        self._interval = telemetry_interval
        self._telemetry_at_start = telemetry_at_start
        self._shadow_interval = shadow_interval
        self._desired_interval = desired_interval
        self._operator_targets = operator_targets
        self.processes = min(devices, processes or default_processes(devices))
        self.devices: dict[str, FleetDevice] = {
            name: FleetDevice(name, self._faults.get(name, [])) for name in self._names
        }
        self.desired_changes = 0  # made by the operator on AWS
        self._shard: Shard | None = None  # the in-process devices
        self._children: list[ShardProcess] = []
        self._operator: asyncio.Task[None] | None = None
        self._running = False

    @property
    def names(self) -> list[str]:
        return list(self._names)

    def _iot(self, service: str = "iot") -> Any:
        env = self._env
        return boto3.client(
            service,  # type: ignore[call-overload]
            region_name=env.get("AWS_REGION", "us-east-1"),
            endpoint_url=env.get("AWS_ENDPOINT_URL"),
            aws_access_key_id=env.get("AWS_ACCESS_KEY_ID", "testing"),
            aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY", "testing"),
        )

    def register(self) -> None:
        """Create every thing with its own certificate and policy, and the topic rule that
        feeds the fleet's telemetry to its AWS consumers (blocking: boto3)."""
        iot = self._iot()
        region = self._env.get("AWS_REGION", "us-east-1")
        with contextlib.suppress(iot.exceptions.ResourceAlreadyExistsException):
            iot.create_policy(
                policyName="fleet-per-thing", policyDocument=_policy(region, "123456789012")
            )
        with contextlib.suppress(iot.exceptions.ResourceAlreadyExistsException):
            iot.create_topic_rule(ruleName="fleet_telemetry", topicRulePayload=_RULE)
        for name in self._names:
            iot.create_thing(thingName=name)
            cert = iot.create_keys_and_certificate(setAsActive=True)
            iot.attach_policy(policyName="fleet-per-thing", target=cert["certificateArn"])
            iot.attach_thing_principal(thingName=name, principal=cert["certificateArn"])
            folder = self._workdir / name
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "cert.pem").write_text(cert["certificatePem"])
            (folder / "key.pem").write_text(cert["keyPair"]["PrivateKey"])
            (folder / "key.pem").chmod(0o600)

    def _event(self, kind: str, name: str, data: Any) -> None:
        """What a shard reports, in this process or from a child."""
        device = self.devices[name]
        if kind == "reading":
            device.sent[data.cloud] += 1
            device.readings.append(data)
        elif kind == "state":
            device.cloud, device.outcome = data["cloud"], data["outcome"]
            device.shadow = Counter(data["shadow"])

    def _shards(self) -> list[list[str]]:
        """The devices of each process: every n-th, so each holds a share of each wave."""
        return [self._names[i :: self.processes] for i in range(self.processes)]

    async def __aenter__(self) -> Self:
        await asyncio.to_thread(self.register)
        try:
            if self.processes == 1:
                await self._start_here()
            else:
                await self._start_children()
        except BaseException:
            await self._stop()
            raise
        _log.info(
            "sim.fleet_started",
            devices=len(self.devices),
            misbehaving=len(self._faults),
            processes=self.processes,
        )
        if self._telemetry_at_start:
            self.start_telemetry()
        return self

    def _shard_settings(self, names: list[str]) -> dict[str, Any]:
        return {
            "env": self._env,
            "workdir": str(self._workdir),
            "names": names,
            "faults": {n: self._faults[n] for n in names if n in self._faults},
            "interval": self._interval,
            "shadow_interval": self._shadow_interval,
        }

    async def _start_here(self) -> None:
        settings = self._shard_settings(self._names)
        self._shard = Shard(
            self._env,
            self._workdir,
            self._names,
            settings["faults"],
            interval=self._interval,
            shadow_interval=self._shadow_interval,
            report=self._event,
        )
        await self._shard.start()
        for name, agent in self._shard.agents.items():
            self.devices[name].agent = agent

    async def _start_children(self) -> None:
        for index, names in enumerate(self._shards(), 1):
            child = ShardProcess(
                index,
                self._shard_settings(names),
                self._workdir / f"fleet-process-{index}.log",
                self._event,
            )
            self._children.append(child)
            for name in names:
                self.devices[name].process = index
        results = await asyncio.gather(*(c.start() for c in self._children), return_exceptions=True)
        failed = [str(r) for r in results if isinstance(r, BaseException)]
        if failed:
            raise SimulatorError("the fleet did not start: " + "; ".join(failed))

    @property
    def failures(self) -> list[str]:
        """What went wrong with child processes (one line of why each, and its log's end)."""
        return [child.error for child in self._children if child.error]

    def check(self) -> None:
        """Raise if a child process died: its devices stopped counting."""
        if failures := self.failures:
            raise SimulatorError("; ".join(failures))

    def start_telemetry(self) -> None:
        """Every device starts sending a reading each interval (none if the interval is 0),
        and its shadow traffic; the operator starts changing desired state."""
        if self._running:
            return
        self._running = True
        if self._shard is not None:
            self._shard.start_telemetry()
        for child in self._children:
            child.post("telemetry-start")
        if self._desired_interval > 0:
            self._operator = asyncio.create_task(self._change_desired(), name="fleet-operator")

    async def stop_telemetry(self) -> None:
        """Stop every device's readings and shadow traffic (the agents stay connected);
        returns once every reading sent so far is counted here. Idempotent."""
        self._running = False
        if self._operator is not None:
            self._operator.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._operator
        if self._shard is not None:
            await self._shard.stop_telemetry()
        for child in self._children:
            with contextlib.suppress(ChildProcessError):  # said by check() below
                await child.command("telemetry-stop", answer="telemetry-stopped")
        self.check()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stop()
        if exc is None:
            self.check()

    async def _stop(self) -> None:
        if self._operator is not None:
            self._operator.cancel()
        if self._shard is not None:
            await self._shard.stop()
            self._shard.report_states()
        await asyncio.gather(*(child.stop() for child in self._children))

    async def _change_desired(self) -> None:
        """An operator changing one device's desired state on AWS now and then."""
        data = await asyncio.to_thread(self._iot, "iot-data")
        while True:
            await asyncio.sleep(self._desired_interval)
            targets = self._names
            if self._operator_targets is not None:
                targets = await self._operator_targets(self._names)
            if not targets:
                continue
            name = random.choice(targets)  # noqa: S311
            key = random.choice(KNOWN_KEYS)  # noqa: S311
            value = round(random.uniform(18, 26), 1) if key == "setpoint" else "eco"  # noqa: S311
            body = json.dumps({"state": {"desired": {key: value}}}).encode()
            try:
                await asyncio.to_thread(data.update_thing_shadow, thingName=name, payload=body)
            except Exception as exc:  # the stand-in is busy: the next change tries again
                _log.warning("sim.fleet_desired_failed", device=name, error=str(exc))
                continue
            self.desired_changes += 1
