"""The cutover report: per wave, who moved, who did not and why, and whether the next wave goes.

Plain data in (`WaveReport`, filled from the store by `bridge.cutover.report`), one
self-contained HTML page out: inline styles and SVG, no script, every text escaped (reasons
carry what devices and AWS said, which the bridge does not control).
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from html import escape

from bridge.reports import svg
from bridge.reports.html import document, table

__all__ = ["OUTCOMES", "DeviceRow", "WaveReport", "render_cutover_report"]

# outcome -> (colour, plain words); None (undecided) is shown as "pending".
OUTCOMES: dict[str, tuple[str, str]] = {
    "cut_over": ("#16a34a", "on Azure"),
    "rolled_back": ("#dc2626", "rolled back to AWS"),
    "left_on_aws": ("#94a3b8", "left on AWS"),
    "skipped": ("#ca8a04", "skipped"),
    "pending": ("#2563eb", "not decided yet"),
}
_ACTIVE = {"running", "paused", "aborting", "rolling_back"}
_DEVICES_SHOWN = 500  # per wave; `iot-bridge cutover status --json` has them all
# Time-to-Azure buckets: (upper bound in seconds, label).
_BUCKETS = (
    (10.0, "under 10 s"),
    (30.0, "10 to 30 s"),
    (60.0, "30 s to 1 min"),
    (120.0, "1 to 2 min"),
    (300.0, "2 to 5 min"),
    (900.0, "5 to 15 min"),
    (float("inf"), "over 15 min"),
)


@dataclass(frozen=True, slots=True)
class DeviceRow:
    """One device of a wave, as the report shows it."""

    device_id: str
    state: str | None  # its migration state now; None when the bridge no longer knows it
    outcome: str | None  # None while undecided
    reason: str | None
    decided_after: float | None = None  # seconds from the job being sent to the outcome


@dataclass(frozen=True, slots=True)
class WaveReport:
    """One wave with its settings, its devices and when its job went out."""

    name: str
    state: str
    reason: str | None
    job_id: str | None
    success_threshold: float
    abort_threshold: float
    deadline_seconds: int
    max_per_minute: int
    group: str | None = None
    sent_at: datetime | None = None
    devices: Sequence[DeviceRow] = field(default_factory=tuple)

    def count(self, outcome: str) -> int:
        """Devices with this outcome ('pending': without one yet)."""
        return sum((d.outcome or "pending") == outcome for d in self.devices)

    def threshold_met(self) -> bool:
        """Whether enough devices are on Azure for the wave's success threshold."""
        total = len(self.devices)
        return total > 0 and self.count("cut_over") >= self.success_threshold * total

    def times_to_azure(self) -> list[float]:
        """Seconds from the job to each device seen on Azure."""
        return [
            d.decided_after
            for d in self.devices
            if d.outcome == "cut_over" and d.decided_after is not None
        ]


def render_cutover_report(waves: Sequence[WaveReport], *, generated_at: datetime) -> str:
    """The whole page: the verdict on the next wave, totals, then each wave in detail."""
    body = _verdict(waves) + _totals(waves) + "".join(_wave(wave) for wave in reversed(waves))
    if not waves:
        body += "<div class='card'><p class='muted'>No waves planned yet.</p></div>"
    subtitle = f"generated {generated_at:%Y-%m-%d %H:%M} UTC, from the bridge's store"
    return document("Cutover report: AWS IoT Core to Azure IoT Hub", body, subtitle=subtitle)


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "n/a"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _verdict(waves: Sequence[WaveReport]) -> str:
    if not waves:
        return (
            "<div class='verdict hold' id='verdict'><b>No wave has run yet.</b> Plan a canary "
            "wave with <code>iot-bridge cutover plan</code>.</div>"
        )
    last = waves[-1]
    name = escape(last.name)
    total, cut = len(last.devices), last.count("cut_over")
    share = f"{cut:,} of {total:,} devices on Azure ({_pct(cut, total)})"
    wanted = f"its success threshold is {last.success_threshold:.0%}"
    if last.state in _ACTIVE or last.state == "planned":
        pending = last.count("pending")
        return (
            f"<div class='verdict hold' id='verdict' data-go='false'><b>Wait: wave {name} is "
            f"{escape(last.state)}.</b> {share} so far, {pending:,} not decided yet; "
            f"{escape(wanted)}.</div>"
        )
    if last.state == "aborted":
        why = f": {escape(last.reason)}" if last.reason else ""
        return (
            f"<div class='verdict hold' id='verdict' data-go='false'><b>Hold the next wave: "
            f"wave {name} was aborted{why}.</b> {share}. Read why its devices rolled back "
            f"below before planning another.{_top_reasons(last)}</div>"
        )
    if last.threshold_met():
        return (
            f"<div class='verdict go' id='verdict' data-go='true'><b>Clear for the next wave: "
            f"wave {name} met its success threshold.</b> {share}; {escape(wanted)}.</div>"
        )
    return (
        f"<div class='verdict hold' id='verdict' data-go='false'><b>Hold the next wave: wave "
        f"{name} missed its success threshold.</b> {share}; {escape(wanted)}."
        f"{_top_reasons(last)}</div>"
    )


def _top_reasons(wave: WaveReport, limit: int = 3) -> str:
    reasons = Counter(
        d.reason or "no reason given" for d in wave.devices if d.outcome == "rolled_back"
    )
    if not reasons:
        return ""
    items = "".join(
        f"<li>{n:,} x {escape(reason)}</li>" for reason, n in reasons.most_common(limit)
    )
    return f"<ul>{items}</ul>"


def _kpi(value: str, label: str, key: str, tone: str = "") -> str:
    return (
        f"<div class='kpi {tone}'><div class='n' data-kpi='{key}'>{escape(value)}</div>"
        f"<div class='l'>{escape(label)}</div></div>"
    )


def _totals(waves: Sequence[WaveReport]) -> str:
    if not waves:
        return ""
    devices = [d for wave in waves for d in wave.devices]
    counts = Counter(d.outcome or "pending" for d in devices)
    times = [t for wave in waves for t in wave.times_to_azure()]
    median = statistics.median(times) if times else None
    rolled = counts["rolled_back"]
    kpis = [
        _kpi(f"{len(waves):,}", "waves", "waves"),
        _kpi(f"{len(devices):,}", "devices in waves", "devices"),
        _kpi(f"{counts['cut_over']:,}", "on Azure", "cut_over"),
        _kpi(f"{rolled:,}", "rolled back to AWS", "rolled_back", "bad" if rolled else ""),
        _kpi(f"{counts['left_on_aws']:,}", "left on AWS", "left_on_aws"),
        _kpi(f"{counts['pending']:,}", "not decided yet", "pending"),
        _kpi(_duration(median), "median time to Azure", "median"),
    ]
    return f"<div class='grid'>{''.join(kpis)}</div>"


def _wave(wave: WaveReport) -> str:
    name = escape(wave.name)
    total = len(wave.devices)
    parts = [(OUTCOMES[o][1], wave.count(o), OUTCOMES[o][0]) for o in OUTCOMES]
    bar = svg.stacked_bar(parts, title=f"wave {wave.name}: devices by outcome")
    legend = "".join(
        f"<span><span class='sw' style='background:{colour}'></span>{escape(label)} "
        f"<b data-outcome='{key}'>{wave.count(key):,}</b></span>"
        for key, (colour, label) in OUTCOMES.items()
    )
    reason = f"<p>{escape(wave.reason)}</p>" if wave.reason else ""
    return (
        f"<section class='card wave' data-wave='{name}'><h2>Wave {name}: "
        f"<span class='pill'>{escape(wave.state)}</span> <span class='muted'>{total:,} "
        f"devices</span></h2>{reason}{bar}<div class='legend'>{legend}</div>"
        f"{_decision(wave)}<div class='grid2'>{_distribution(wave)}{_timeline(wave)}</div>"
        f"{_devices(wave)}</section>"
    )


def _decision(wave: WaveReport) -> str:
    total = len(wave.devices)
    cut, rolled = wave.count("cut_over"), wave.count("rolled_back")
    met = wave.threshold_met()
    if wave.state in {"done", "aborted"}:
        word = "met" if met else "missed"
    else:
        word = "met so far" if met else "not met yet"
    over = rolled > wave.abort_threshold * total
    rows = [
        [
            "success threshold",
            f"{wave.success_threshold:.0%} on Azure",
            f"{cut:,} of {total:,} ({_pct(cut, total)})",
            f"<b data-threshold='success'>{word}</b>",
        ],
        [
            "abort threshold",
            f"over {wave.abort_threshold:.0%} rolled back",
            f"{rolled:,} of {total:,} ({_pct(rolled, total)})",
            f"<b data-threshold='abort'>{'passed' if over else 'not passed'}</b>",
        ],
    ]
    sent = f"{wave.sent_at:%Y-%m-%d %H:%M:%S} UTC" if wave.sent_at else "not sent"
    group = f", thing group <code>{escape(wave.group)}</code>" if wave.group else ""
    job = f"AWS job <code>{escape(wave.job_id)}</code>" if wave.job_id else "No AWS job yet"
    facts = (
        f"<p class='muted'>{job}, sent {escape(sent)}{group}; each device has "
        f"{wave.deadline_seconds:,} s to show up on Azure, at most {wave.max_per_minute:,} "
        "devices offered the job per minute.</p>"
    )
    return (
        "<h3>What decides the next wave</h3>"
        + table(["", "needs", "this wave", "verdict"], rows)
        + facts
    )


def _distribution(wave: WaveReport) -> str:
    times = wave.times_to_azure()
    if not times:
        return (
            "<div><h3>Time to appear on Azure</h3><p class='muted'>No device on Azure "
            "yet.</p></div>"
        )
    counts = Counter(next(label for bound, label in _BUCKETS if t < bound) for t in times)
    items = [(label, float(counts[label])) for _, label in _BUCKETS]
    chart = svg.hbar_chart(
        items, title=f"wave {wave.name}: time to appear on Azure", colors=("#16a34a",)
    )
    p50 = statistics.median(times)
    top = max(times)
    return (
        f"<div><h3>Time to appear on Azure</h3>{chart}<p class='muted'>median "
        f"<b data-time='median'>{_duration(p50)}</b>, slowest "
        f"<b data-time='max'>{_duration(top)}</b>, from the job being sent.</p></div>"
    )


def _timeline(wave: WaveReport, points: int = 30) -> str:
    decided = [
        (d.decided_after, d.outcome)
        for d in wave.devices
        if d.outcome in {"cut_over", "rolled_back"} and d.decided_after is not None
    ]
    if not decided:
        return ""
    end = max(t for t, _ in decided) or 1.0
    steps = [end * i / (points - 1) for i in range(points)]
    series = {
        OUTCOMES[outcome][1]: [
            float(sum(1 for t, o in decided if o == outcome and t <= at)) for at in steps
        ]
        for outcome in ("cut_over", "rolled_back")
    }
    labels = [""] * points
    labels[0], labels[-1] = "job sent", f"+{_duration(end)}"
    chart = svg.line_chart(
        series,
        title=f"wave {wave.name}: devices decided over time",
        colors=(OUTCOMES["cut_over"][0], OUTCOMES["rolled_back"][0]),
        x_labels=labels,
    )
    return f"<div><h3>Cutover timeline</h3>{chart}</div>"


def _devices(wave: WaveReport) -> str:
    # The devices that need reading first: not on Azure, then the ones that are.
    order = {"rolled_back": 0, "pending": 1, "skipped": 2, "left_on_aws": 3, "cut_over": 4}
    shown = sorted(wave.devices, key=lambda d: (order.get(d.outcome or "pending", 5), d.device_id))
    rows = [
        [
            f"<code>{escape(d.device_id)}</code>",
            escape(d.state or "unknown"),
            _pill(d.outcome),
            escape(_duration(d.decided_after)) if d.outcome == "cut_over" else "",
            escape(d.reason or ""),
        ]
        for d in shown[:_DEVICES_SHOWN]
    ]
    more = len(shown) - _DEVICES_SHOWN
    tail = (
        f"<p class='muted'>and {more:,} more; <code>iot-bridge cutover status --json</code> "
        "lists them all.</p>"
        if more > 0
        else ""
    )
    grid = table(
        ["device", "state now", "outcome", "time to Azure", "reason"], rows, numeric=frozenset({3})
    )
    return f"<h3>Devices</h3>{grid}{tail}"


def _pill(outcome: str | None) -> str:
    key = outcome or "pending"
    words = OUTCOMES[key][1] if key in OUTCOMES else key
    return f"<span class='pill {escape(key)}'>{escape(words)}</span>"
