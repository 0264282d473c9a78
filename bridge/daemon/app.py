"""`iot-bridge run`: the daemon with its services, from the settings."""

from __future__ import annotations

from bridge.azure.budget import RateBudget
from bridge.config import CloudSettings, Settings
from bridge.core.service import Service
from bridge.cutover.service import CutoverService
from bridge.daemon.server import Daemon
from bridge.daemon.status_page import StatusBoard, waves_from_metrics
from bridge.exit_codes import ExitCode
from bridge.metrics import Metrics
from bridge.mirror.service import MirrorOptions, MirrorService
from bridge.relay.service import RelayOptions, RelayService
from bridge.reverse.service import ReverseService

__all__ = ["RunOptions", "build_daemon", "run_daemon"]

# What the command line adds to the settings (the plan serves the mirror and the relay).
RunOptions = MirrorOptions


def build_daemon(
    cloud: CloudSettings,
    settings: Settings,
    options: RunOptions,
    *,
    metrics: Metrics | None = None,
) -> Daemon:
    """The daemon and its services, in start-up order (shutdown goes in reverse)."""
    metrics = metrics or Metrics.create()
    # One budget per hub: the mirror's registry writes and the relay's module key reads spend
    # the same identity-registry quota, and IoT Hub counts them together.
    budget = RateBudget.for_hub(settings.iothub.tier, settings.iothub.units)
    services: list[Service] = [
        MirrorService(cloud, settings, options, metrics=metrics, budget=budget)
    ]
    # The relay is live only: a `--once` catch-up has no telemetry stream to finish.
    if settings.relay.enabled and not options.once:
        relay_options = RelayOptions(plan=options.plan)
        services.append(
            RelayService(cloud, settings, relay_options, metrics=metrics, budget=budget)
        )
    # The reverse path is live only too: Azure to AWS for devices already cut over.
    if settings.reverse.enabled and not options.once:
        services.append(ReverseService(cloud, settings, metrics=metrics, budget=budget))
    # Last: cutover moves devices the mirror has put on Azure, and stops first.
    if settings.cutover.enabled and not options.once:
        services.append(CutoverService(cloud, settings, metrics=metrics))
    return Daemon(
        services,
        metrics=metrics,
        host=settings.http.host,
        port=settings.http.port,
        shutdown_timeout=settings.shutdown_timeout,
        status=StatusBoard(
            metrics,
            settings.store.dsn,
            # The cutover service exports the waves; without it there are none to show.
            waves=waves_from_metrics(metrics) if settings.cutover.enabled else None,
        ),
    )


async def run_daemon(
    cloud: CloudSettings,
    settings: Settings,
    options: RunOptions,
    *,
    metrics: Metrics | None = None,
) -> ExitCode:
    """Run until SIGTERM/SIGINT (or, with `once`, until the first full sync is done)."""
    return await build_daemon(cloud, settings, options, metrics=metrics).serve()
