"""Every Prometheus metric the bridge exports, declared in one place."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["CUTOVER_OUTCOMES", "RELAY_DEAD_LETTER_REASONS", "RELAY_OUTCOMES", "SIDES", "Metrics"]

NAMESPACE = "bridge"
SIDES = ("aws", "azure")
RELAY_OUTCOMES = ("sent", "skipped", "dead_lettered")
RELAY_DEAD_LETTER_REASONS = ("unresolved_device", "unknown_device", "too_large", "refused")
CUTOVER_OUTCOMES = ("cut_over", "rolled_back", "left_on_aws", "skipped")


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
        )
        for outcome in RELAY_OUTCOMES:
            metrics.relay_messages.labels(outcome=outcome)
        for reason in RELAY_DEAD_LETTER_REASONS:
            metrics.relay_dead_letters.labels(reason=reason)
        for outcome in CUTOVER_OUTCOMES:
            metrics.cutover_devices.labels(outcome=outcome)
        for side in SIDES:
            metrics.errors.labels(side=side, reason="unexpected")
        return metrics
