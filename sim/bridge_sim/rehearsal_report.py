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
    # The fleet's cutover, from the verification: (device, telemetry gap at cutover in
    # seconds beyond the reading interval, or None when it did not move), final states,
    # readings acknowledged and lost, the verdict.
    cutover_gaps: list[tuple[str, float | None]] = field(default_factory=list)
    final_states: dict[str, int] = field(default_factory=dict)
    readings: int = 0
    readings_lost: int = 0
    verdict: str = ""

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
        f"{_cutover(r)}"
        f"<div class='card'><h2>The estate</h2><p>{r.things:,} things in {r.groups:,} groups, "
        f"{r.certificates:,} certificates, {r.rules:,} rules; the plan found {r.gaps} gaps and "
        f"{r.needing_human:,} devices needing a human (see <code>plan/migration-plan.html</code>)."
        "</p></div>"
    )
    return document("Migration rehearsal", body, subtitle="on the local stand-ins")


def _cutover(r: Rehearsal) -> str:
    """The fleet's cutover: how devices ended, and each moved device's telemetry gap."""
    if not r.verdict:
        return ""
    moved = [(name, gap) for name, gap in r.cutover_gaps if gap is not None]
    gaps = svg.bar_chart(
        [gap * 1000 for _, gap in moved],
        title="telemetry gap at cutover per device",
        unit=" ms",
        width=900,
        height=150,
        x_labels=[moved[0][0], *[""] * max(len(moved) - 2, 0), moved[-1][0]] if moved else [],
    )
    ended = ", ".join(
        f"{count} {state.replace('_', ' ')}" for state, count in r.final_states.items()
    )
    tone = "go" if r.verdict == "pass" else "hold"
    said = (
        "Every device is on Azure or rolled back with its reason, and no reading was lost."
        if r.verdict == "pass"
        else "Some device or reading did not make it: see verification.txt."
    )
    worst = max((gap for _, gap in moved), default=0.0) * 1000
    return (
        f"<div class='card'><h2>The fleet's cutover</h2>"
        f"<div class='verdict {tone}'><b>{escape(r.verdict.upper())}.</b> {escape(said)}</div>"
        f"<p>{escape(ended)}; {r.readings:,} readings acknowledged by a cloud, "
        f"{r.readings_lost:,} lost.</p>{gaps}"
        f"<p class='muted'>For each device that moved: the silence between the last reading "
        f"AWS took and the first Azure took, beyond the device's reading interval (longest "
        f"{worst:.0f} ms). Waves in detail: <code>cutover.html</code>.</p></div>"
    )
