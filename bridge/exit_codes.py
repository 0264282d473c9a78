"""Every exit code of `iot-bridge`, in one table (the README lists them)."""

from __future__ import annotations

from enum import IntEnum

__all__ = ["ExitCode"]


class ExitCode(IntEnum):
    """What the process's exit status tells an operator or a supervisor."""

    OK = 0  # done, or stopped cleanly on SIGTERM/SIGINT after draining
    FAILED = 1  # a service failed while running (the log says which and why)
    USAGE = 2  # the command line itself was wrong (typer/click's own code)
    STARTUP_FAILED = 3  # could not start: an endpoint unreachable, an input unreadable or foreign
    CONFIG_ERROR = 4  # the settings are missing, wrong or contradict each other
    VERIFY_FAILED = 5  # a verification (the rehearsal's) found a device or a message lost
    INTERRUPTED = 130  # a second signal forced the exit before the drain finished
