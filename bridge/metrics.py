"""Every Prometheus metric the bridge exports, declared in one place."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = [
    "CUTOVER_EXECUTION_STATUSES",
    "CUTOVER_OUTCOMES",
    "CUTOVER_ROLLBACK_REASONS",
    "RELAY_DEAD_LETTER_REASONS",
    "RELAY_OUTCOMES",
    "REVERSE_OUTCOMES",
    "REVERSE_TWIN_OUTCOMES",
    "SIDES",
    "Metrics",
    "record_readiness",
]

NAMESPACE = "bridge"
SIDES = ("aws", "azure")
RELAY_OUTCOMES = ("sent", "skipped", "dead_lettered")
RELAY_DEAD_LETTER_REASONS = ("unresolved_device", "unknown_device", "too_large", "refused")
CUTOVER_OUTCOMES = ("cut_over", "rolled_back", "left_on_aws", "skipped")
# Why a device was rolled back: what its AWS job execution said, or that the deadline passed
# (`claimed_success`: the execution SUCCEEDED, yet the device never showed up on Azure).
CUTOVER_ROLLBACK_REASONS = (
    "execution_failed",
    "execution_rejected",
    "execution_timed_out",
    "execution_canceled",
    "execution_removed",
    "deadline",
    "claimed_success",
)
# AWS IoT job execution statuses, lower-cased.
CUTOVER_EXECUTION_STATUSES = (
    "queued",
    "in_progress",
    "succeeded",
    "failed",
    "rejected",
    "timed_out",
    "canceled",
    "removed",
)
REVERSE_OUTCOMES = ("republished", "skipped", "dead_lettered")
REVERSE_TWIN_OUTCOMES = ("written", "echo", "duplicate", "dead_lettered")


@dataclass(frozen=True)
class Metrics:
    """The bridge's metrics, bound to one registry so tests can use a fresh one."""

    registry: CollectorRegistry
    events_received: Counter
    events_applied: Counter
    errors: Counter
    retries: Counter
    throttles: Counter
    devices: Gauge
    event_lag: Histogram
    queue_depth: Gauge
    drift: Counter
    dead_letters: Counter
    relay_messages: Counter
    relay_dead_letters: Counter
    relay_quota_used: Gauge
    relay_lag: Histogram
    cutover_devices: Counter
    ready: Gauge
    ready_check: Gauge
    cutover_rollbacks: Counter
    cutover_time_to_azure: Histogram
    cutover_wave_devices: Gauge
    cutover_wave_state: Gauge
    cutover_wave_deadline: Gauge
    cutover_job_executions: Gauge
    cutover_wave_aborts: Counter
    reverse_messages: Counter
    reverse_twin_writes: Counter
    reverse_lag: Histogram

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> Metrics:
        """Declare every metric on `registry` (a new one when omitted)."""
        registry = registry if registry is not None else CollectorRegistry()
        metrics = cls(
            registry=registry,
            events_received=Counter(
                "events_received_total",
                "Events received, by side and kind.",
                ["side", "kind"],
                namespace=NAMESPACE,
                registry=registry,
            ),
            events_applied=Counter(
                "events_applied_total",
                "Events applied to the other side, by kind and outcome.",
                ["kind", "outcome"],
                namespace=NAMESPACE,
                registry=registry,
            ),
            errors=Counter(
                "errors_total",
                "Errors, by side and reason.",
                ["side", "reason"],
                namespace=NAMESPACE,
                registry=registry,
            ),
            retries=Counter(
                "retries_total",
                "Retried calls, by side and operation.",
                ["side", "operation"],
                namespace=NAMESPACE,
                registry=registry,
            ),
            throttles=Counter(
                "throttles_total",
                "Throttled answers (429/503), by side and operation class.",
                ["side", "operation"],
                namespace=NAMESPACE,
                registry=registry,
            ),
            devices=Gauge(
                "devices",
                "Devices per migration state.",
                ["state"],
                namespace=NAMESPACE,
                registry=registry,
            ),
            event_lag=Histogram(
                "event_lag_seconds",
                "Time from an AWS change to its Azure write.",
                namespace=NAMESPACE,
                registry=registry,
                buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            ),
            queue_depth=Gauge(
                "queue_depth",
                "Work waiting, by queue (outbox, ingest, in_flight).",
                ["queue"],
                namespace=NAMESPACE,
                registry=registry,
            ),
            drift=Counter(
                "drift_total",
                "Differences found and repaired by anti-entropy, by side.",
                ["side"],
                namespace=NAMESPACE,
                registry=registry,
            ),
            dead_letters=Counter(
                "dead_letters_total",
                "Messages or changes given up on and kept for an operator, by side.",
                ["side"],
                namespace=NAMESPACE,
                registry=registry,
            ),
            relay_messages=Counter(
                "relay_messages_total",
                "Telemetry messages taken from AWS by the relay, by outcome "
                "(sent, skipped, dead_lettered).",
                ["outcome"],
                namespace=NAMESPACE,
                registry=registry,
            ),
            relay_dead_letters=Counter(
                "relay_dead_letters_total",
                "Telemetry messages the relay dead-lettered, by reason.",
                ["reason"],
                namespace=NAMESPACE,
                registry=registry,
            ),
            relay_quota_used=Gauge(
                "relay_daily_quota_used_ratio",
                "Share of IoT Hub's daily message quota (4 KB blocks) the relay used today (UTC).",
                namespace=NAMESPACE,
                registry=registry,
            ),
            relay_lag=Histogram(
                "relay_lag_seconds",
                "Time from a telemetry message reaching the bridge to IoT Hub accepting it.",
                namespace=NAMESPACE,
                registry=registry,
                buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            ),
            cutover_devices=Counter(
                "cutover_devices_total",
                "Devices whose cutover was decided, by outcome.",
                ["outcome"],
                namespace=NAMESPACE,
                registry=registry,
            ),
            ready=Gauge(
                "ready",
                "1 when /readyz answers ready (every check holds), 0 otherwise.",
                namespace=NAMESPACE,
                registry=registry,
            ),
            ready_check=Gauge(
                "ready_check",
                "1 when this /readyz check holds, 0 otherwise, by check (<service>.<check>).",
                ["check"],
                namespace=NAMESPACE,
                registry=registry,
            ),
            cutover_rollbacks=Counter(
                "cutover_rollbacks_total",
                "Devices a wave rolled back (they stay on AWS), by reason.",
                ["reason"],
                namespace=NAMESPACE,
                registry=registry,
            ),
            cutover_time_to_azure=Histogram(
                "cutover_time_to_azure_seconds",
                "Time from a wave's job being sent to a device being seen on Azure as itself.",
                namespace=NAMESPACE,
                registry=registry,
                buckets=(5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200),
            ),
            cutover_wave_devices=Gauge(
                "cutover_wave_devices",
                "Devices of each wave, by outcome (pending: not decided yet).",
                ["wave", "outcome"],
                namespace=NAMESPACE,
                registry=registry,
            ),
            cutover_wave_state=Gauge(
                "cutover_wave_state",
                "1 for the state each wave is in, 0 for the others.",
                ["wave", "state"],
                namespace=NAMESPACE,
                registry=registry,
            ),
            cutover_wave_deadline=Gauge(
                "cutover_wave_deadline_timestamp_seconds",
                "When the last device of a sent wave must have shown up on Azure (Unix time).",
                ["wave"],
                namespace=NAMESPACE,
                registry=registry,
            ),
            cutover_job_executions=Gauge(
                "cutover_job_executions",
                "AWS IoT job executions of each active wave, by status (lower-cased).",
                ["wave", "status"],
                namespace=NAMESPACE,
                registry=registry,
            ),
            cutover_wave_aborts=Counter(
                "cutover_wave_aborts_total",
                "Waves that ended aborted (threshold passed or an operator's abort), by wave.",
                ["wave"],
                namespace=NAMESPACE,
                registry=registry,
            ),
            reverse_messages=Counter(
                "reverse_messages_total",
                "Device-to-cloud messages of cut-over devices read by the reverse path, by "
                "outcome (republished on AWS, skipped, dead_lettered).",
                ["outcome"],
                namespace=NAMESPACE,
                registry=registry,
            ),
            reverse_twin_writes=Counter(
                "reverse_twin_writes_total",
                "Twin changes the reverse path carried to AWS shadows, by section (desired, "
                "reported) and outcome (written, echo, duplicate, dead_lettered).",
                ["section", "outcome"],
                namespace=NAMESPACE,
                registry=registry,
            ),
            reverse_lag=Histogram(
                "reverse_lag_seconds",
                "Time from IoT Hub enqueuing a message or twin change to AWS accepting it.",
                namespace=NAMESPACE,
                registry=registry,
                buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            ),
        )
        for reason in CUTOVER_ROLLBACK_REASONS:
            metrics.cutover_rollbacks.labels(reason=reason)
        for outcome in RELAY_OUTCOMES:
            metrics.relay_messages.labels(outcome=outcome)
        for reason in RELAY_DEAD_LETTER_REASONS:
            metrics.relay_dead_letters.labels(reason=reason)
        for outcome in CUTOVER_OUTCOMES:
            metrics.cutover_devices.labels(outcome=outcome)
        for side in SIDES:
            metrics.errors.labels(side=side, reason="unexpected")
        for outcome in REVERSE_OUTCOMES:
            metrics.reverse_messages.labels(outcome=outcome)
        for section in ("desired", "reported"):
            for outcome in REVERSE_TWIN_OUTCOMES:
                metrics.reverse_twin_writes.labels(section=section, outcome=outcome)
        return metrics


def record_readiness(metrics: Metrics, checks: Mapping[str, bool]) -> None:
    """Export what /readyz found: `bridge_ready` and one `bridge_ready_check` per check."""
    metrics.ready.set(1 if all(checks.values()) else 0)
    for name, ok in checks.items():
        metrics.ready_check.labels(check=name).set(1 if ok else 0)
