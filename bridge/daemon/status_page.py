"""The status page: `GET /` for people, `GET /status.json` for what it shows.

Read-only and self-contained: the numbers come from the store (devices, problems, dead
letters, outbox) and from the sampler (the last hour of throughput and lag); the charts
are inline SVG drawn here, and a few lines of inline script swap in a fresh board every
few seconds. Nothing secret is shown: no settings, and reasons are scrubbed of keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from html import escape
from types import TracebackType
from typing import Any, Self

from bridge.core.machine import PROBLEM_STATES, State
from bridge.core.service import Check
from bridge.core.store import Store, open_store
from bridge.daemon.sampler import StatusSampler
from bridge.daemon.status import store_status
from bridge.metrics import Metrics
from bridge.reports import svg
from bridge.reports.html import document, table

__all__ = [
    "StatusBoard",
    "WaveProgress",
    "WavesProvider",
    "render_board",
    "render_page",
    "waves_from_metrics",
]

REFRESH_SECONDS = 3
_NOT_ON_AZURE = {State.DISCOVERED, State.PROVISIONING, State.FAILED, State.DELETED}
_ON_AZURE = frozenset(State) - _NOT_ON_AZURE
# States a device passes through; staying in one this long means something waits on it.
_TRANSIENT = (State.PROVISIONING, State.SYNCING, State.CUTOVER_PENDING, State.CUTTING_OVER)
_LAG_HOLD_SECONDS = 60.0  # p99 lag above this over the last 5 minutes holds the next wave
_SECRET = re.compile(
    r"(SharedAccessKey|SharedAccessSignature|AccountKey|sig|password|secret)=[^;&\s]+",
    re.IGNORECASE,
)

_STATES: dict[State, tuple[str, str]] = {  # colour, what it means in plain words
    State.DISCOVERED: ("#94a3b8", "seen on AWS, not created on Azure yet"),
    State.PROVISIONING: ("#7dd3fc", "being created on Azure"),
    State.MIRRORED: ("#2563eb", "on Azure and kept in step"),
    State.SYNCING: ("#0891b2", "an AWS change being applied"),
    State.CUTOVER_PENDING: ("#fbbf24", "picked for a wave"),
    State.CUTTING_OVER: ("#f97316", "told to move, not seen on Azure yet"),
    State.CUT_OVER: ("#16a34a", "connected to Azure"),
    State.FINALIZED: ("#166534", "done, AWS side retired"),
    State.ROLLED_BACK: ("#9333ea", "did not arrive on Azure, back on AWS"),
    State.FAILED: ("#dc2626", "refused, needs an operator"),
    State.DELETED: ("#cbd5e1", "deleted on AWS"),
}


@dataclass(frozen=True, slots=True)
class WaveProgress:
    """One cutover wave as the page shows it."""

    name: str
    state: str  # planned, running, done, aborted...
    devices: int
    on_azure: int  # cut over or finalized
    rolled_back: int = 0
    failed: int = 0


WavesProvider = Callable[[], Awaitable[Sequence[WaveProgress]]]
"""Returns the waves to show; plugged in by the cutover service."""


def waves_from_metrics(metrics: Metrics) -> WavesProvider:
    """The waves as the cutover service exports them (`bridge_cutover_wave_*`), by name:
    the page then shows what Grafana shows, without reading the store again."""

    async def waves() -> list[WaveProgress]:
        states: dict[str, str] = {}
        counts: dict[str, dict[str, float]] = {}
        for family in metrics.cutover_wave_state.collect():
            for sample in family.samples:
                if sample.value == 1:
                    states[sample.labels["wave"]] = sample.labels["state"]
        for family in metrics.cutover_wave_devices.collect():
            for sample in family.samples:
                wave = counts.setdefault(sample.labels["wave"], {})
                wave[sample.labels["outcome"]] = sample.value
        return [
            WaveProgress(
                name,
                states.get(name, "unknown"),
                devices=int(sum(counts.get(name, {}).values())),
                on_azure=int(counts.get(name, {}).get("cut_over", 0)),
                rolled_back=int(counts.get(name, {}).get("rolled_back", 0)),
            )
            for name in sorted(states)
        ]

    return waves


class StatusBoard:
    """Gathers what the status page shows; keeps its own read-only store handle and sampler."""

    def __init__(
        self,
        metrics: Metrics,
        dsn: str,
        *,
        waves: WavesProvider | None = None,
        every: float = 5.0,
        stuck_after: float = 900.0,
    ) -> None:
        self.sampler = StatusSampler(metrics, every=every)
        self.waves = waves
        self.stuck_after = stuck_after
        self._dsn = dsn
        self._stack = contextlib.AsyncExitStack()
        self._store: Store | None = None

    async def __aenter__(self) -> Self:
        # The mirror has created and migrated the store by now; this handle only reads.
        self._store = await self._stack.enter_async_context(open_store(self._dsn, existing=True))
        task = asyncio.create_task(self.sampler.run(), name="daemon.status_sampler")

        async def stop_sampling() -> None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        self._stack.push_async_callback(stop_sampling)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stack.aclose()
        self._store = None

    async def snapshot(self, checks: Mapping[str, Check] | None = None) -> dict[str, Any]:
        """Everything the page shows, as JSON-ready data."""
        if self._store is None:
            raise RuntimeError("the status board was not started")
        self.sampler.sample()  # the freshest counters, not up to `every` seconds old
        found = await store_status(self._store, limit=20)
        attention = [
            {**p, "reason": _scrub(p["reason"] or "no reason recorded")} for p in found["problems"]
        ]
        attention += await self._stuck()
        devices = found["devices"]
        live = found["total"] - devices[State.DELETED.value]
        bins = self.sampler.per_bin()
        snap: dict[str, Any] = {
            "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "devices": devices,
            "total": live,
            "on_azure": sum(devices[s.value] for s in _ON_AZURE),
            "attention": attention,
            "stuck_after_seconds": self.stuck_after,
            "outbox": found["outbox"],
            "dead_letters": {
                "last_hour": self.sampler.dead_letters_since(3600),
                "latest": [{**d, "reason": _scrub(d["reason"])} for d in found["dead_letters"][:5]],
            },
            "throughput": {
                "last_minute": self.sampler.applied_since(60),
                "per_minute": [b["applied"] for b in bins],
            },
            "lag": {
                "p50": self.sampler.lag_since(300, 0.5),
                "p99": self.sampler.lag_since(300, 0.99),
                "p50_per_minute": [b["p50"] for b in bins],
                "p99_per_minute": [b["p99"] for b in bins],
            },
            "waves": [asdict(w) for w in await self.waves()] if self.waves else None,
        }
        if checks is not None:
            snap["ready"] = all(check.ok for check in checks.values())
            snap["not_ready"] = {
                name: check.detail or "does not hold"
                for name, check in checks.items()
                if not check.ok
            }
        snap["verdict"] = _verdict(snap)
        return snap

    async def _stuck(self) -> list[dict[str, Any]]:
        assert self._store is not None
        now = time.time()
        stuck = []
        for state in _TRANSIENT:
            for device in await self._store.devices_in_state(state, 20):  # oldest first
                age = now - device.updated_at.timestamp()
                if age < self.stuck_after:
                    break
                stuck.append(
                    {
                        "device_id": device.device_id,
                        "state": state.value,
                        "reason": f"{_STATES[state][1]} for {_duration(age)}",
                        "since": device.updated_at.isoformat(),
                        "stuck": True,
                    }
                )
        return stuck


def _scrub(text: str) -> str:
    return _SECRET.sub(lambda m: f"{m.group(1)}=***", text)


def _verdict(snap: Mapping[str, Any]) -> dict[str, Any]:
    """Whether the next wave can go, and the plain reasons when it should wait."""
    reasons = []
    failed = sum(1 for a in snap["attention"] if a["state"] in {s.value for s in PROBLEM_STATES})
    stuck = len(snap["attention"]) - failed
    if failed:
        reasons.append(f"{_plural(failed, 'device')} failed or rolled back: see below")
    if stuck:
        reasons.append(f"{_plural(stuck, 'device')} stuck in a state for too long")
    if snap["dead_letters"]["last_hour"]:
        reasons.append(
            f"{_plural(int(snap['dead_letters']['last_hour']), 'dead letter')} in the last hour"
        )
    waiting = snap["devices"][State.DISCOVERED.value] + snap["devices"][State.PROVISIONING.value]
    if waiting:
        reasons.append(f"{_plural(waiting, 'device')} not on Azure yet")
    p99 = snap["lag"]["p99"]
    if p99 is not None and p99 > _LAG_HOLD_SECONDS:
        reasons.append(f"changes take {p99:.0f} s to reach Azure (p99, last 5 minutes)")
    if snap.get("ready") is False:
        reasons.append("the bridge is not ready: " + "; ".join(snap["not_ready"].values()))
    return {"go": not reasons, "reasons": reasons}


def _share(part: int, whole: int) -> str:
    return f"{100 * part / max(whole, 1):.0f}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def _kpi(value: str, label: str, name: str, tone: str = "") -> str:
    return (
        f"<div class='kpi {tone}'><div class='n' data-kpi='{name}'>{escape(value)}</div>"
        f"<div class='l'>{escape(label)}</div></div>"
    )


def render_board(snap: Mapping[str, Any]) -> str:
    """The inside of the page, redrawn on every refresh."""
    return "".join(
        [
            _verdict_html(snap),
            _kpis(snap),
            _states(snap),
            _waves(snap),
            _plots(snap),
            _attention(snap),
            _letters(snap),
        ]
    )


def render_page(snap: Mapping[str, Any]) -> str:
    """The whole page, with the script that refreshes the board."""
    script = (
        "const board=document.getElementById('board'),sub=document.getElementById('subtitle');"
        "async function refresh(){try{const r=await fetch('/?part=board',{cache:'no-store'});"
        "if(!r.ok)throw new Error(r.status);board.innerHTML=await r.text();"
        "sub.textContent='updated '+new Date().toLocaleTimeString()+"
        f"' \\u00b7 refreshes every {REFRESH_SECONDS} s';"
        "}catch(e){sub.textContent='cannot reach the bridge, retrying ('+e+')';}}"
        f"setInterval(refresh,{REFRESH_SECONDS * 1000});"
    )
    body = f"<div id='board'>{render_board(snap)}</div>"
    subtitle = f"updated {snap['generated_at']} · refreshes every {REFRESH_SECONDS} s"
    return document("iot-bridge · migration status", body, subtitle=subtitle, script=script)


def _verdict_html(snap: Mapping[str, Any]) -> str:
    verdict = snap["verdict"]
    if verdict["go"]:
        return (
            "<div class='verdict go' id='verdict'><b>Clear for the next wave.</b> Every device "
            "is on Azure, nothing failed or stuck, no dead letters in the last hour.</div>"
        )
    items = "".join(f"<li>{escape(r)}</li>" for r in verdict["reasons"])
    return (
        "<div class='verdict hold' id='verdict'><b>Hold the next wave.</b> "
        f"Look at these first:<ul>{items}</ul></div>"
    )


def _kpis(snap: Mapping[str, Any]) -> str:
    attention = len(snap["attention"])
    dead = int(snap["dead_letters"]["last_hour"])
    lag = snap["lag"]
    slow = (lag["p99"] or 0) > _LAG_HOLD_SECONDS
    return (
        "<div class='grid'>"
        + "".join(
            [
                _kpi(f"{snap['total']:,}", "devices", "total"),
                _kpi(f"{snap['on_azure']:,}", "on Azure", "on_azure"),
                _kpi(str(attention), "need attention", "attention", "bad" if attention else ""),
                _kpi(f"{snap['outbox']:,}", "changes waiting", "outbox"),
                _kpi(str(dead), "dead letters, last hour", "dead_letters", "bad" if dead else ""),
                _kpi(
                    f"{snap['throughput']['last_minute']:,.0f}",
                    "changes applied, last minute",
                    "applied",
                ),
                _kpi(_ms(lag["p50"]), "lag p50, last 5 min", "lag_p50"),
                _kpi(_ms(lag["p99"]), "lag p99, last 5 min", "lag", "warn" if slow else ""),
            ]
        )
        + "</div>"
    )


def _states(snap: Mapping[str, Any]) -> str:
    devices = snap["devices"]
    parts = [(state.value, devices[state.value], colour) for state, (colour, _) in _STATES.items()]
    bar = svg.stacked_bar(parts, title="devices per migration state")
    legend = "".join(
        f"<span title='{escape(meaning)}'><span class='sw' style='background:{colour}'></span>"
        f"{escape(state.value.replace('_', ' '))} <b data-state='{state.value}'>"
        f"{devices[state.value]:,}</b></span>"
        for state, (colour, meaning) in _STATES.items()
        if devices[state.value] or state in {State.MIRRORED, State.FAILED}
    )
    return (
        f"<div class='card'><h2>Devices per migration state</h2>{bar}"
        f"<div class='legend'>{legend}</div></div>"
    )


def _plots(snap: Mapping[str, Any]) -> str:
    labels = ["60 min ago", *[""] * 28, "30 min ago", *[""] * 29, "now"]
    labels = labels[: len(snap["throughput"]["per_minute"])]
    applied = svg.bar_chart(
        snap["throughput"]["per_minute"], title="changes applied per minute", x_labels=labels
    )
    lag = svg.line_chart(
        {"p50": snap["lag"]["p50_per_minute"], "p99": snap["lag"]["p99_per_minute"]},
        title="event lag p50 and p99 per minute",
        unit=" s",
        x_labels=labels,
        colors=(svg.PALETTE[0], svg.PALETTE[1]),
    )
    key = (
        f"<div class='legend'><span><span class='sw' style='background:{svg.PALETTE[0]}'></span>"
        f"p50</span><span><span class='sw' style='background:{svg.PALETTE[1]}'></span>p99</span>"
        "<span class='muted'>time from the AWS change to its write on Azure</span></div>"
    )
    return (
        "<div class='grid2'>"
        f"<div class='card'><h2>Changes applied to Azure, per minute</h2>{applied}</div>"
        f"<div class='card'><h2>Event lag, last hour</h2>{lag}{key}</div></div>"
    )


def _waves(snap: Mapping[str, Any]) -> str:
    waves = snap["waves"]
    if not waves:
        return "<div class='card' id='waves'><h2>Waves</h2><p class='muted'>No waves yet.</p></div>"
    rows = [
        [
            escape(w["name"]),
            f"<span class='pill'>{escape(w['state'])}</span>",
            f"{w['devices']:,}",
            f"{w['on_azure']:,}",
            f"{w['rolled_back']:,}",
            f"{w['failed']:,}",
            f"<div class='bar'><i style='width:{_share(w['on_azure'], w['devices'])}%'></i></div>",
        ]
        for w in waves
    ]
    headers = ["wave", "state", "devices", "on Azure", "rolled back", "failed", "progress"]
    grid = table(headers, rows, numeric=frozenset({2, 3, 4, 5}))
    return f"<div class='card' id='waves'><h2>Waves</h2>{grid}</div>"


def _attention(snap: Mapping[str, Any]) -> str:
    found = snap["attention"]
    if not found:
        return (
            "<div class='card' id='attention'><h2>Devices needing attention</h2>"
            "<p class='muted'>None: no device failed, rolled back or stuck.</p></div>"
        )
    rows = [
        [
            f"<code>{escape(a['device_id'])}</code>",
            (
                f"<span class='pill {'stuck' if a.get('stuck') else escape(a['state'])}'>"
                f"{escape(a['state'].replace('_', ' '))}</span>"
            ),
            escape(a["reason"]),
            escape(a["since"][:19].replace("T", " ")),
        ]
        for a in found
    ]
    grid = table(["device", "state", "why", "since (UTC)"], rows)
    return (
        f"<div class='card' id='attention'><h2>Devices needing attention ({len(found)})</h2>"
        f"{grid}</div>"
    )


def _letters(snap: Mapping[str, Any]) -> str:
    latest = snap["dead_letters"]["latest"]
    if not latest:
        return "<div class='card'><h2>Dead letters</h2><p class='muted'>None kept.</p></div>"
    rows = [
        [
            f"#{d['id']}",
            escape(d["at"][:19].replace("T", " ")),
            escape(d["source"]),
            escape(d["reason"]),
        ]
        for d in latest
    ]
    grid = table(["", "when (UTC)", "from", "why"], rows)
    return (
        "<div class='card'><h2>Dead letters: the latest</h2>"
        "<p class='muted'>Messages and changes the bridge gave up on; "
        f"<code>iot-bridge status</code> lists them.</p>{grid}</div>"
    )
