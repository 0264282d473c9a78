"""Secrets in a device repository, reported by location and kind only, never by value."""

from __future__ import annotations

import re

from bridge.firmware.models import TouchPoint
from bridge.firmware.touch import matching_lines

__all__ = ["find_secrets"]

# Each pattern decides *that* a line holds a secret; nothing it matches is ever kept.
_SECRETS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----"),
        "private key in the repository: rotate it and load it from secure storage",
    ),
    (
        re.compile(
            r"(?i)\b\w*(?:wifi|wlan|ssid|sta)_?(?:pass|password|psk|passphrase|key)\w*\b"
            r"(?:\[\w*\])?\s*(?:=|:|\s)\s*[\"'][^\"']+[\"']"
        ),
        "Wi-Fi password in source: move it to provisioning or secure storage",
    ),
    (
        re.compile(r"(?i)\bwlan\.connect\(\s*[^,]+,\s*[\"'][^\"']+[\"']"),
        "Wi-Fi password in source: move it to provisioning or secure storage",
    ),
    (
        re.compile(r"#define\s+\w*(?:PASS|PASSWORD|PSK|PASSPHRASE)\w*\s+\"[^\"]+\""),
        "password in a header: move it to provisioning or secure storage",
    ),
    (
        re.compile(r"(?i)CONFIG_\w*WIFI_PASSWORD\s*=\s*\"[^\"]+\""),
        "Wi-Fi password in sdkconfig: move it to provisioning or secure storage",
    ),
    (
        re.compile(r"(?i)aws_secret_access_key\s*[=:]|AWS_SECRET_ACCESS_KEY\s*[=:]\s*\S"),
        "AWS secret access key in the repository: revoke it",
    ),
)


def find_secrets(path: str, text: str, stack: str) -> list[TouchPoint]:
    """A needs-human touch point for every line holding a secret; the value is never kept."""
    points = []
    for number, line in matching_lines(text, [pattern for pattern, _ in _SECRETS]):
        for pattern, reason in _SECRETS:
            if pattern.search(line):
                points.append(
                    TouchPoint(
                        file=path,
                        line=number,
                        kind="secret",
                        stack=stack,
                        verdict="needs_human",
                        reason=reason,
                    )
                )
                break
    return points
