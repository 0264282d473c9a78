"""A simulated fleet: devices with their own AWS certificates running the migration agent.

Each device is a thing registered with the AWS stand-in through boto3 (its own
AWS-issued certificate, the usual per-thing policy) that runs the reference Python agent
(`firmware_patches/agents/python/agent.py`) and publishes temperature readings on its
current cloud at a set rate. Some can be told to misbehave:

- `reject`: rejects the migration job;
- `vanish`: takes the job and is never heard from again (no Azure, no AWS);
- `azure-unreachable`: cannot reach Azure, reports FAILED at its fallback deadline, stays on AWS;
- `ignore-jobs`: old firmware that never listens to jobs;
- `claim-success`: marks the job SUCCEEDED without ever going to Azure.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any, Self

import boto3

from bridge.logging import get_logger

__all__ = ["AGENT_PATH", "Fleet", "FleetDevice", "Reading", "load_agent"]

AGENT_PATH = (
    Path(__file__).resolve().parents[2] / "firmware_patches" / "agents" / "python" / "agent.py"
)
_log = get_logger("sim.fleet")


def load_agent() -> ModuleType:
    """The reference agent module, loaded from its file (it is a program, not a package)."""
    if (loaded := sys.modules.get("migration_agent")) is not None:
        return loaded
    spec = importlib.util.spec_from_file_location("migration_agent", AGENT_PATH)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the migration agent from {AGENT_PATH}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


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


@dataclass(frozen=True)
class Reading:
    """One telemetry reading as the device saw it: when, and which cloud took it."""

    seq: int
    at: float  # wall clock, seconds since the epoch (the `ts` in the payload)
    cloud: str  # "aws", "azure" or "unsent" (refused or between clouds)


@dataclass
class FleetDevice:
    """One simulated device: its agent and what it sent where."""

    name: str
    faults: list[str]
    agent: Any
    sent: Counter[str] = field(default_factory=Counter)  # cloud -> readings sent
    readings: list[Reading] = field(default_factory=list)


class Fleet:
    """N devices on the AWS stand-in, each with its agent and telemetry loop.

    Args:
        env: The stand-ins' settings (`SimStack.env()`).
        workdir: Where certificates and agent state files go.
        devices: How many devices.
        prefix: Thing name prefix (`<prefix>-00`, `<prefix>-01`...).
        misbehaving: Device index -> fault names (see the module docstring).
        telemetry_interval: Seconds between readings of one device; 0 sends none.
        telemetry_at_start: Start the readings on entry; else `start_telemetry()` does.
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
    ) -> None:
        if devices < 1:
            raise ValueError("a fleet needs at least one device")
        self._env = dict(env)
        self._workdir = workdir
        self._names = [f"{prefix}-{i:02d}" for i in range(devices)]
        self._faults = {self._names[i]: list(f) for i, f in (misbehaving or {}).items()}
        self._interval = telemetry_interval
        self._telemetry_at_start = telemetry_at_start
        self.devices: dict[str, FleetDevice] = {}
        self._tasks: list[asyncio.Task[None]] = []
        # Every device's send blocks until its cloud acknowledges: one thread each, so a
        # slow cloud delays that device, never the rest of the fleet.
        self._threads = ThreadPoolExecutor(max_workers=devices, thread_name_prefix="fleet")

    @property
    def names(self) -> list[str]:
        return list(self._names)

    def _iot(self) -> Any:
        env = self._env
        return boto3.client(
            "iot",
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

    def _start_agent(self, agents: ModuleType, name: str) -> FleetDevice:
        folder = self._workdir / name
        settings = agents.AgentSettings(
            thing_name=name,
            cert_file=str(folder / "cert.pem"),
            key_file=str(folder / "key.pem"),
            endpoint=self._env["AWS_IOT_DATA_ENDPOINT"],
            ca_file=self._env.get("AWS_IOT_ROOT_CA"),
            faults=self._faults.get(name, []),
        )
        agent = agents.MigrationAgent(settings, folder / "state.json")
        agent.start()
        return FleetDevice(name, settings.faults, agent)

    async def __aenter__(self) -> Self:
        await asyncio.to_thread(self.register)
        agents = load_agent()
        for name in self._names:
            self.devices[name] = await asyncio.to_thread(self._start_agent, agents, name)
        _log.info("sim.fleet_started", devices=len(self.devices), misbehaving=len(self._faults))
        if self._telemetry_at_start:
            self.start_telemetry()
        return self

    def start_telemetry(self) -> None:
        """Every device starts sending a reading each interval (none if the interval is 0)."""
        if self._interval <= 0 or self._tasks:
            return
        for device in self.devices.values():
            self._tasks.append(
                asyncio.create_task(self._telemetry(device), name=f"fleet[{device.name}]")
            )

    async def stop_telemetry(self) -> None:
        """Stop every device's readings (the agents stay connected); idempotent."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop_telemetry()
        for device in self.devices.values():
            await asyncio.to_thread(device.agent.stop)
        self._threads.shutdown(wait=False, cancel_futures=True)

    async def _telemetry(self, device: FleetDevice) -> None:
        loop = asyncio.get_running_loop()
        sequence = 0
        while True:
            sequence += 1
            at = time.time()
            reading = {
                "seq": sequence,
                "ts": round(at, 3),
                "temperature": round(random.uniform(18, 26), 2),  # noqa: S311
            }
            try:
                cloud = await loop.run_in_executor(
                    self._threads, device.agent.send_telemetry, reading
                )
            except Exception:  # between clouds, or a vanished device: count it
                cloud = "unsent"
            device.sent[cloud] += 1
            device.readings.append(Reading(sequence, at, cloud))
            await asyncio.sleep(self._interval)
