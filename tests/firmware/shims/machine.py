"""The few `machine` parts the corpus programs use, on CPython."""

import hashlib
import os


def unique_id():
    return hashlib.sha256(os.environ.get("FIRMWARE_TEST_CHIP", "chip").encode()).digest()[:6]


class ADC:
    def __init__(self, pin):
        self.pin = pin

    def read(self):
        return 235


class Pin:
    OUT = 1
    IN = 0

    def __init__(self, number, mode=None):
        self.number = number
        self.state = 0

    def value(self, state=None):
        if state is None:
            return self.state
        self.state = state
        return None


def reset():
    raise SystemExit(0)
