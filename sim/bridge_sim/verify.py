"""The rehearsal's verdict: AWS and Azure compared device by device.

For every device of the simulated fleet: where it ended (state and reason, from the
bridge's store), whether IoT Hub holds its identity and a twin matching its AWS thing and
shadows (read from AWS with boto3, not through the bridge), and its telemetry: every reading
the device got an acknowledgement for, against what each cloud's own consumers received
(`bridge_sim.observe`). A reading is lost when a cloud acknowledged it and Azure's consumers
never saw it; a duplicate is a reading Azure's consumers saw more than once (consumers
deduplicate by message id; the count says how often they must). The telemetry gap at cutover
is the silence between the last reading AWS took and the first Azure took, beyond the
device's normal interval.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from bridge_sim.fleet import Reading
from bridge_sim.observe import Arrival

__all__ = ["DeviceCheck", "Verification", "check_device", "percentile"]

ON_AZURE = frozenset({"cut_over", "finalized"})
LEFT_ON_AWS = frozenset({"rolled_back"})


@dataclass
class DeviceCheck:
    """One device compared across both clouds."""

    device_id: str
    state: str
    reason: str
    faults: list[str]
    identity_on_azure: bool
    twin_matches: bool
    acknowledged: int  # readings a cloud acknowledged
    on_azure: int  # distinct readings Azure's consumers saw (relayed or direct)
    relayed: int  # of those, carried by the bridge's relay
    direct: int  # of those, sent by the device itself after cutover
    on_aws: int  # distinct readings AWS's consumers saw, of those expected there
    sent_to_aws: int
    back_on_aws: int = 0  # sent to Azure by the device, carried back by the reverse path
    lost: list[int] = field(default_factory=list)  # seqs acknowledged, never on Azure
    missing_on_aws: list[int] = field(default_factory=list)  # seqs AWS acked, not seen there
    duplicates: int = 0
    gap_seconds: float | None = None  # cut-over devices only
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _distinct(arrivals: Iterable[Arrival]) -> dict[int, Arrival]:
    seen: dict[int, Arrival] = {}
    for arrival in arrivals:
        seen.setdefault(arrival.seq, arrival)
    return seen


def _gap(readings: list[Reading], interval: float) -> float | None:
    first_azure = next((r for r in readings if r.cloud == "azure"), None)
    if first_azure is None:
        return None
    before = [r for r in readings if r.cloud == "aws" and r.at < first_azure.at]
    if not before:
        return None
    return max(0.0, first_azure.at - before[-1].at - interval)


def check_device(
    *,
    device_id: str,
    state: str,
    reason: str,
    faults: list[str],
    readings: list[Reading],
    azure: list[Arrival],
    aws: list[Arrival],
    identity_on_azure: bool,
    twin_matches: bool,
    interval: float,
    reverse: bool = False,
    finalized_at: float | None = None,
) -> DeviceCheck:
    """Compare one device's readings with what each cloud received; list what is wrong.

    With the reverse path on, AWS must also get back what the device sent to Azure itself,
    up to its finalizing: what IoT Hub took before that moment (`finalized_at`).
    """
    acknowledged = {r.seq for r in readings if r.cloud in {"aws", "azure"}}
    on_azure, on_aws = _distinct(azure), _distinct(aws)
    back = {
        seq
        for seq, arrival in _distinct(a for a in azure if a.via == "device").items()
        if reverse and (finalized_at is None or arrival.enqueued_at < finalized_at)
    } & acknowledged
    sent_to_aws = {r.seq for r in readings if r.cloud == "aws"}
    expected_on_aws = sent_to_aws | back
    check = DeviceCheck(
        device_id=device_id,
        state=state,
        reason=reason,
        faults=faults,
        identity_on_azure=identity_on_azure,
        twin_matches=twin_matches,
        acknowledged=len(acknowledged),
        on_azure=len(on_azure.keys() & acknowledged),
        relayed=sum(1 for a in on_azure.values() if a.via == "relay"),
        direct=sum(1 for a in on_azure.values() if a.via == "device"),
        on_aws=len(on_aws.keys() & expected_on_aws),
        sent_to_aws=len(sent_to_aws),
        back_on_aws=len(back & on_aws.keys()),
        lost=sorted(acknowledged - on_azure.keys()),
        missing_on_aws=sorted(expected_on_aws - on_aws.keys()),
        duplicates=len(azure) - len(on_azure),
        gap_seconds=_gap(readings, interval) if state in ON_AZURE else None,
    )
    if state in LEFT_ON_AWS and not reason:
        check.problems.append("rolled back without a reason")
    elif state not in ON_AZURE | LEFT_ON_AWS:
        check.problems.append(f"ended in {state}, neither on Azure nor rolled back")
    if not identity_on_azure:
        check.problems.append("no identity on Azure")
    if not twin_matches:
        check.problems.append("twin does not match the AWS thing and shadows")
    if check.lost:
        check.problems.append(f"{len(check.lost)} readings lost on the way to Azure")
    if check.missing_on_aws:
        check.problems.append(
            f"{len(check.missing_on_aws)} readings AWS acknowledged not seen there"
        )
    return check


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile (`share` in 0..1) of `values`; 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


@dataclass
class Verification:
    """Every device's check and the rehearsal's verdict."""

    devices: list[DeviceCheck]

    @property
    def ok(self) -> bool:
        return all(device.ok for device in self.devices)

    def summary(self) -> dict[str, Any]:
        states = Counter(device.state for device in self.devices)
        gaps = [d.gap_seconds for d in self.devices if d.gap_seconds is not None]
        return {
            "verdict": "pass" if self.ok else "fail",
            "devices": len(self.devices),
            "states": dict(sorted(states.items())),
            "readings_acknowledged": sum(d.acknowledged for d in self.devices),
            "readings_on_azure": sum(d.on_azure for d in self.devices),
            "readings_lost": sum(len(d.lost) for d in self.devices),
            "readings_missing_on_aws": sum(len(d.missing_on_aws) for d in self.devices),
            "readings_back_on_aws": sum(d.back_on_aws for d in self.devices),
            "duplicates_on_azure": sum(d.duplicates for d in self.devices),
            "gap_at_cutover_seconds": {
                "p50": percentile(gaps, 0.5),
                "p99": percentile(gaps, 0.99),
                "max": max(gaps, default=0.0),
            },
            "devices_with_problems": [d.device_id for d in self.devices if not d.ok],
        }

    def to_json(self) -> str:
        body = {"summary": self.summary(), "devices": [asdict(d) for d in self.devices]}
        return json.dumps(body, indent=2, sort_keys=False)

    def render_text(self) -> str:
        """The report for a terminal: one line per device, then the verdict."""
        lines = [
            (
                f"{'device':<14} {'state':<12} {'acked':>5} {'azure':>5} {'relay':>5} "
                f"{'direct':>6} {'aws':>5} {'lost':>4} {'dup':>4} {'gap s':>6}  reason / problems"
            )
        ]
        for d in self.devices:
            gap = f"{d.gap_seconds:.2f}" if d.gap_seconds is not None else "-"
            note = "; ".join(d.problems) if d.problems else d.reason
            lines.append(
                f"{d.device_id:<14} {d.state:<12} {d.acknowledged:>5} {d.on_azure:>5} "
                f"{d.relayed:>5} {d.direct:>6} {d.on_aws:>5} {d.back_on_aws:>5} {len(d.lost):>4} "
                f"{d.duplicates:>4} {gap:>6}  {note}"
            )
        summary = self.summary()
        gaps = summary["gap_at_cutover_seconds"]
        states = ", ".join(f"{count} {state}" for state, count in summary["states"].items())
        lines += [
            "",
            f"devices: {summary['devices']} ({states})",
            (
                f"readings: {summary['readings_acknowledged']} acknowledged by a cloud, "
                f"{summary['readings_on_azure']} on Azure, {summary['readings_lost']} lost, "
                f"{summary['duplicates_on_azure']} duplicates delivered on Azure"
            ),
            (
                f"on AWS: {summary['readings_back_on_aws']} readings carried back from Azure "
                f"by the reverse path, {summary['readings_missing_on_aws']} due there missing"
            ),
            (
                f"gap at cutover beyond the reading interval: p50 {gaps['p50']:.2f} s, "
                f"p99 {gaps['p99']:.2f} s, max {gaps['max']:.2f} s"
            ),
            f"verdict: {summary['verdict'].upper()}"
            + (
                ""
                if self.ok
                else f" ({len(summary['devices_with_problems'])} devices with problems)"
            ),
        ]
        return "\n".join(lines)
