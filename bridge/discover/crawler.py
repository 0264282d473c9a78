"""Discovery: read every part of the estate, concurrently, politely and resumably.

Small collections (types, policies, rules, jobs, CAs, groups) are read whole; things and
certificates are read item by item by a pool of workers. Each finished item goes to the
journal first, so a rerun after an interruption reads only what is missing. When the
account's fleet index holds shadows, they come from it in pages (see `fleet_index`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bridge.aws.clients import AwsApi, ensure_reachable, open_clients
from bridge.aws.event_config import read_event_configurations
from bridge.aws.ratelimit import RateLimiter
from bridge.config import CloudSettings
from bridge.discover import phases
from bridge.discover.fleet_index import thing_indexing_mode
from bridge.discover.journal import Journal
from bridge.discover.output import write_inventory
from bridge.discover.things import things as read_things
from bridge.errors import Denied
from bridge.inventory.models import Finding, Inventory
from bridge.logging import get_logger

__all__ = ["DiscoveryOptions", "Progress", "discover"]

log = get_logger("discover")
Progress = Callable[[str, int, int | None], None]


@dataclass(frozen=True)
class DiscoveryOptions:
    """How discovery behaves.

    Args:
        concurrency: Requests in flight at once.
        rate_scale: Multiplies every per-API rate budget; 0 disables the budgets
            (for stand-ins only: real AWS throttles).
        rates: Per-operation overrides, requests per second.
        resume: Continue from the journal of an interrupted run when one exists.
        shadows: Read classic and named shadows.
        progress: Called with (phase, done, total) as work finishes.
    """

    concurrency: int = 32
    rate_scale: float = 1.0
    rates: Mapping[str, float] = field(default_factory=dict)
    resume: bool = True
    shadows: bool = True
    progress: Progress | None = None


class Context:
    """What the phases share: clients, journal, findings and progress."""

    def __init__(
        self, iot: AwsApi, data: AwsApi, journal: Journal, options: DiscoveryOptions
    ) -> None:
        self.iot = iot
        self.data = data
        self.journal = journal
        self.options = options
        self.findings: list[Finding] = []
        self._counts: dict[str, int] = defaultdict(int)

    def finding(self, severity: str, code: str, message: str, resource: str | None = None) -> None:
        """Record something discovery could not read or that needs a human."""
        finding = Finding.model_validate(
            {"severity": severity, "code": code, "message": message, "resource": resource}
        )
        self.findings.append(finding)
        log.warning("discover.finding", code=code, resource=resource, detail=message)

    def advance(self, phase: str, total: int | None = None) -> None:
        """Count one finished item of `phase`."""
        self._counts[phase] += 1
        if self.options.progress is not None:
            self.options.progress(phase, self._counts[phase], total)

    async def guarded(self, phase: str, work: Awaitable[Any]) -> Any:
        """Run a phase; an access-denied API becomes a finding, not a failed discovery."""
        try:
            return await work
        except Denied as exc:
            self.finding("error", "AccessDenied", f"{phase}: {exc}", None)
            return None

    async def pool(self, items: list[Any], worker: Callable[[Any], Awaitable[None]]) -> None:
        """Run `worker` over `items` with the configured concurrency, emptying `items`.

        Each item leaves the list as a worker takes it, so what is done with is freed
        while the rest runs (memory at 100,000 things).
        """
        items.reverse()  # pop() from the end then goes in the original order
        workers = max(1, min(self.options.concurrency, len(items)))

        async def drain() -> None:
            while items:
                await worker(items.pop())

        async with asyncio.TaskGroup() as group:
            for _ in range(workers):
                group.create_task(drain())


async def discover(
    cloud: CloudSettings, output: Path, options: DiscoveryOptions | None = None
) -> Inventory:
    """Read the estate behind `cloud` and write its inventory to `output`."""
    options = options or DiscoveryOptions()
    journal = Journal(output.with_name(output.name + ".journal"))
    resumed = journal.load() if options.resume else 0
    journal.open(fresh=resumed == 0)
    if resumed:
        log.info("discover.resuming", records=resumed, journal=str(journal.path))
    limiter = RateLimiter(options.rates, scale=options.rate_scale)
    await ensure_reachable(cloud)
    try:
        async with open_clients(cloud, limiter, concurrency=options.concurrency) as (iot, data):
            ctx = Context(iot, data, journal, options)
            inventory = await _crawl(ctx, cloud.AWS_REGION)
    finally:
        journal.close()
    write_inventory(inventory, output)
    journal.remove()
    log.info(
        "discover.finished",
        output=str(output),
        things=len(inventory.things),
        certificates=len(inventory.certificates),
        findings=len(inventory.findings),
    )
    return inventory


async def _crawl(ctx: Context, region: str) -> Inventory:
    endpoint = await ctx.guarded("describe_endpoint", phases.endpoint(ctx))
    indexing = await ctx.guarded("get_indexing_configuration", thing_indexing_mode(ctx))
    events = await ctx.guarded("describe_event_configurations", read_event_configurations(ctx.iot))
    async with asyncio.TaskGroup() as group:
        types = group.create_task(ctx.guarded("thing_types", phases.thing_types(ctx)))
        policies = group.create_task(ctx.guarded("policies", phases.policies(ctx)))
        cas = group.create_task(ctx.guarded("ca_certificates", phases.ca_certificates(ctx)))
        rules = group.create_task(ctx.guarded("rules", phases.rules(ctx)))
        jobs = group.create_task(ctx.guarded("jobs", phases.jobs(ctx)))
        groups = group.create_task(ctx.guarded("thing_groups", phases.thing_groups(ctx)))
    thing_groups = groups.result() or []
    things = await ctx.guarded("things", read_things(ctx, thing_groups, indexing)) or []
    certificates = (
        await ctx.guarded("certificates", phases.certificates(ctx, things, policies.result() or []))
        or []
    )
    account = None
    if things and things[0].arn:
        account = things[0].arn.split(":")[4]
    return Inventory(
        generated_at=dt.datetime.now(dt.UTC),
        account_id=account,
        region=region,
        data_endpoint=endpoint,
        fleet_indexing=indexing not in (None, "OFF"),
        thing_indexing_mode=indexing,
        event_configurations=events,
        thing_types=types.result() or [],
        thing_groups=thing_groups,
        things=things,
        certificates=certificates,
        ca_certificates=cas.result() or [],
        policies=policies.result() or [],
        rules=rules.result() or [],
        jobs=jobs.result() or [],
        findings=ctx.findings,
    )
