"""A MotoServer with the jobs engine installed, a boto3 client and a captured publish."""

from __future__ import annotations

import json
from typing import Any

import boto3
import botocore.config

from bridge_sim.aws.jobs import JobsEngine
from bridge_sim.aws.moto_server import MotoServer

REGION = "eu-west-1"
START = 1_700_000_000.0


class Harness:
    """Drives the engine: control plane over HTTP, device requests straight into `handle`."""

    def __init__(self) -> None:
        self.now = START
        self.published: list[tuple[str, dict[str, Any]]] = []
        self.server = MotoServer(region=REGION)
        self.server.start()
        self.engine = JobsEngine(
            moto=self.server, publish=self._publish, clock=lambda: self.now, tick_interval=0.01
        )
        self.engine.install()
        self.iot = boto3.client(
            "iot",
            endpoint_url=self.server.endpoint_url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=botocore.config.Config(retries={"max_attempts": 1}),
        )

    def _publish(self, topic: str, payload: bytes) -> None:
        self.published.append((topic, json.loads(payload)))

    def close(self) -> None:
        self.iot.close()
        self.server.stop()

    def things(self, *names: str, group: str | None = None) -> list[str]:
        arns = []
        for name in names:
            arns.append(self.iot.create_thing(thingName=name)["thingArn"])
            if group is not None:
                self.iot.add_thing_to_thing_group(thingGroupName=group, thingName=name)
        return arns

    def group(self, name: str, parent: str | None = None) -> str:
        if parent is None:
            created = self.iot.create_thing_group(thingGroupName=name)
        else:
            created = self.iot.create_thing_group(thingGroupName=name, parentGroupName=parent)
        return str(created["thingGroupArn"])

    def job(self, job_id: str, targets: list[str], **kwargs: Any) -> None:
        document = kwargs.pop("document", json.dumps({"operation": "cutover"}))
        self.iot.create_job(jobId=job_id, targets=targets, document=document, **kwargs)

    def messages(self, topic: str) -> list[dict[str, Any]]:
        return [payload for name, payload in self.published if name == topic]

    def topics(self) -> list[str]:
        return [name for name, _ in self.published]

    async def device(self, thing: str, suffix: str, body: Any = None) -> tuple[str, dict[str, Any]]:
        """Send one request; return the accepted/rejected reply's outcome and payload."""
        raw = body if isinstance(body, bytes) else json.dumps(body or {}).encode()
        start = len(self.published)
        await self.engine.handle(f"$aws/things/{thing}/jobs/{suffix}", raw)
        prefix = f"$aws/things/{thing}/jobs/{suffix}/"
        replies = [(t, p) for t, p in self.published[start:] if t.startswith(prefix)]
        assert len(replies) == 1, replies
        topic, payload = replies[0]
        return topic.removeprefix(prefix), payload

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.engine.tick()

    def status(self, job_id: str, thing: str) -> str:
        execution = self.iot.describe_job_execution(jobId=job_id, thingName=thing)["execution"]
        return str(execution["status"])

    def statuses(self, job_id: str) -> dict[str, str]:
        summaries = self.iot.list_job_executions_for_job(jobId=job_id)["executionSummaries"]
        return {
            s["thingArn"].rsplit("/", 1)[-1]: s["jobExecutionSummary"]["status"] for s in summaries
        }
