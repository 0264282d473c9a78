"""The AWS stand-in's control plane without the broker: moto plus the glue, for fast tests."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.config

from bridge_sim.aws.control_plane import control_plane as sim_control_plane
from bridge_sim.aws.indexing import FleetIndex
from bridge_sim.aws.moto_server import MotoServer
from bridge_sim.aws.shadows import ShadowService


@dataclass
class Captured:
    """Every message the glue published, in order."""

    messages: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def publish(self, topic: str, payload: bytes) -> None:
        self.messages.append((topic, json.loads(payload)))

    def topics(self) -> list[str]:
        return [topic for topic, _ in self.messages]

    def last(self, topic: str) -> dict[str, Any]:
        return next(body for t, body in reversed(self.messages) if t == topic)


@dataclass
class ControlPlane:
    moto: MotoServer
    shadows: ShadowService
    captured: Captured
    index: FleetIndex | None = None

    def client(self, service: str = "iot") -> Any:
        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.moto.endpoint_url,
            region_name=self.moto.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=botocore.config.Config(retries={"max_attempts": 1}),
        )


@contextlib.contextmanager
def control_plane(
    region: str = "us-east-1", *, registry_events: bool = True
) -> Iterator[ControlPlane]:
    """moto with thing rules, registry events, shadows, AWS-style certificates and the index."""
    captured = Captured()
    with sim_control_plane(
        region, publish=captured.publish, registry_events=registry_events
    ) as plane:
        yield ControlPlane(plane.moto, plane.shadows, captured, plane.index)
