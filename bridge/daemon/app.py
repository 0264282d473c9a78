"""`iot-bridge run`: the daemon with its services, from the settings."""

from __future__ import annotations

from bridge.config import CloudSettings, Settings
from bridge.core.service import Service
from bridge.cutover.service import CutoverService
from bridge.daemon.server import Daemon
from bridge.exit_codes import ExitCode
from bridge.metrics import Metrics
from bridge.mirror.service import MirrorOptions, MirrorService

__all__ = ["RunOptions", "build_daemon", "run_daemon"]

# What the command line adds to the settings (the mirror's options; cutover takes none).
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
    services: list[Service] = [MirrorService(cloud, settings, options, metrics=metrics)]
    # After the mirror: cutover moves devices the mirror has put on Azure, and stops first.
    if settings.cutover.enabled and not options.once:
        services.append(CutoverService(cloud, settings, metrics=metrics))
    return Daemon(
        services,
        metrics=metrics,
        host=settings.http.host,
        port=settings.http.port,
        shutdown_timeout=settings.shutdown_timeout,
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
