"""The rehearsal's summary as one HTML page with charts, written beside its other outputs."""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape

from bridge.reports import svg
from bridge.reports.html import document, table

__all__ = ["Rehearsal", "render_rehearsal"]


@dataclass
class Rehearsal:
    """What a rehearsal measured, stage by stage."""

    things: int = 0
    groups: int = 0
    certificates: int = 0
    rules: int = 0
    gaps: int = 0
    needing_human: int = 0
    stages: list[tuple[str, float]] = field(default_factory=list)  # name, seconds
    # (seconds since the daemon started, on Azure, failed, not on Azure yet)
    progress: list[tuple[float, int, int, int]] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)  # live changes, AWS call to twin

    @property
    def mirrored(self) -> int:
        return self.progress[-1][1] if self.progress else 0

    @property
    def failed(self) -> int:
        return self.progress[-1][2] if self.progress else 0


def _kpi(value: str, label: str, tone: str = "") -> str:
    return (
        f"<div class='kpi {tone}'><div class='n'>{escape(value)}</div>"
        f"<div class='l'>{escape(label)}</div></div>"
    )


def render_rehearsal(r: Rehearsal) -> str:
    """Summary, stage timeline, devices on Azure over the initial sync, live-change latency."""
    sync = dict(r.stages).get("initial sync", 0.0)
    worst = max(r.latencies_ms, default=0.0)
    ok = not r.failed and r.mirrored >= r.things
    verdict = (
        f"<div class='verdict go'><b>The rehearsal went through.</b> All {r.things:,} devices "
        f"reached Azure in {sync:.1f} s and live changes arrived within {worst:.0f} ms.</div>"
        if ok
        else f"<div class='verdict hold'><b>Look before the real window:</b> {r.failed:,} devices "
        f"failed, {r.mirrored:,} of {r.things:,} reached Azure.</div>"
    )
    kpis = "".join(
        [
            _kpi(f"{r.things:,}", "things on AWS"),
            _kpi(f"{r.mirrored:,}", "mirrored on Azure"),
            _kpi(f"{r.failed:,}", "failed", "bad" if r.failed else ""),
            _kpi(f"{sync:.1f} s", "initial sync"),
            _kpi(f"{worst:.0f} ms", "slowest live change"),
            _kpi(f"{r.gaps}", "gaps in the plan", "warn" if r.gaps else ""),
        ]
    )
    stages = svg.hbar_chart(
        [(name, round(seconds, 1)) for name, seconds in r.stages],
        title="seconds per stage",
        unit=" s",
    )
    times = [t for t, *_ in r.progress]
    labels = ["0 s", *[""] * max(len(times) - 2, 0), f"{times[-1]:.0f} s"] if times else []
    progress = svg.line_chart(
        {
            "on Azure": [float(p[1]) for p in r.progress],
            "failed": [float(p[2]) for p in r.progress],
            "not on Azure yet": [float(p[3]) for p in r.progress],
        },
        title="devices per state during the initial sync",
        x_labels=labels,
        colors=(svg.PALETTE[2], svg.PALETTE[3], svg.PALETTE[0]),
    )
    key = "".join(
        f"<span><span class='sw' style='background:{colour}'></span>{name}</span>"
        for name, colour in (
            ("on Azure", svg.PALETTE[2]),
            ("failed", svg.PALETTE[3]),
            ("not on Azure yet", svg.PALETTE[0]),
        )
    )
    latency = svg.bar_chart(
        r.latencies_ms, title="live change latency", unit=" ms", width=900, height=150
    )
    rows = [[escape(name), f"{seconds:.1f} s"] for name, seconds in r.stages]
    body = (
        f"{verdict}<div class='grid'>{kpis}</div>"
        "<div class='grid2'>"
        f"<div class='card'><h2>Where the time went</h2>{stages}"
        f"{table(['stage', 'took'], rows, numeric=frozenset({1}))}</div>"
        f"<div class='card'><h2>Devices during the initial sync</h2>{progress}"
        f"<div class='legend'>{key}</div></div></div>"
        f"<div class='card'><h2>Live changes: AWS shadow update to IoT Hub twin</h2>{latency}"
        f"<p class='muted'>{len(r.latencies_ms)} changes, each timed from the AWS API call until "
        "the twin read back showed it.</p></div>"
        f"<div class='card'><h2>The estate</h2><p>{r.things:,} things in {r.groups:,} groups, "
        f"{r.certificates:,} certificates, {r.rules:,} rules; the plan found {r.gaps} gaps and "
        f"{r.needing_human:,} devices needing a human (see <code>plan/migration-plan.html</code>)."
        "</p></div>"
    )
    return document("Migration rehearsal", body, subtitle="on the local stand-ins")
