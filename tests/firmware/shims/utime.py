"""MicroPython's utime is CPython's time."""

from time import *  # noqa: F403
from time import monotonic as _monotonic


def ticks_ms():
    return int(_monotonic() * 1000)
