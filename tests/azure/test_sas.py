"""Connection strings and SAS tokens, checked against the SDK's and the emulator's rules."""

from __future__ import annotations

import pytest
from azure.iot.hub.sastoken import SasToken

from bridge.azure import ConnectionStringError, SasTokenSource, ServiceConnectionString
from bridge.errors import ConfigError
from bridge_sim.iothub.sas import verify_token

KEY = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODk="
GOOD = f"HostName=myhub.azure-devices.net;SharedAccessKeyName=iothubowner;SharedAccessKey={KEY}"


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_parse_reads_every_part_and_hides_the_key():
    parsed = ServiceConnectionString.parse(GOOD + ";")

    assert (parsed.host_name, parsed.policy, parsed.key) == (
        "myhub.azure-devices.net",
        "iothubowner",
        KEY,
    )
    assert KEY not in repr(parsed)
    assert KEY not in str(parsed)
    assert "SharedAccessKey=***" in str(parsed)


@pytest.mark.parametrize(
    ("text", "missing"),
    [
        (f"SharedAccessKeyName=p;SharedAccessKey={KEY}", "HostName"),
        (f"HostName=h;SharedAccessKey={KEY}", "SharedAccessKeyName"),
        ("HostName=h;SharedAccessKeyName=p", "SharedAccessKey"),
        ("HostName=h;SharedAccessKeyName=p;SharedAccessKey=", "SharedAccessKey"),
        ("", "HostName, SharedAccessKeyName, SharedAccessKey"),
    ],
)
def test_missing_parts_are_named(text, missing):
    with pytest.raises(ConnectionStringError, match=f"lacks {missing}") as error:
        ServiceConnectionString.parse(text)
    assert isinstance(error.value, ConfigError)
    assert isinstance(error.value, ValueError)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"HostName=h;DeviceId=d1;SharedAccessKey={KEY}", "device connection string"),
        ("HostName=h;SharedAccessKeyName=p;SharedAccessKey=not base64!", "not base64"),
        (f"HostName=h;garbage;SharedAccessKey={KEY}", "without '='"),
    ],
)
def test_malformed_strings_never_echo_the_key(text, message):
    with pytest.raises(ConnectionStringError, match=message) as error:
        ServiceConnectionString.parse(text)
    assert KEY not in str(error.value)
    assert "not base64!" not in str(error.value)


def test_token_is_the_one_the_sdk_builds_and_the_hub_accepts():
    clock = FakeClock(1_700_000_000.0)
    source = SasTokenSource(ServiceConnectionString.parse(GOOD), ttl=3600, clock=clock)

    token = source.token()

    sdk = SasToken("myhub.azure-devices.net", KEY, "iothubowner", ttl=3600)
    sdk.expiry_time = 1_700_003_600
    sdk._token = sdk._build_token()
    assert token == str(sdk)
    verify_token(token, [KEY], resource="myhub.azure-devices.net", now=clock.now)


def test_port_is_part_of_the_signed_resource():
    connection = ServiceConnectionString.parse(
        f"HostName=127.0.0.1:8443;SharedAccessKeyName=iothubowner;SharedAccessKey={KEY}"
    )
    token = SasTokenSource(connection).token()

    assert "sr=127.0.0.1%3A8443&" in token
    verify_token(token, [KEY], resource="127.0.0.1:8443")


def test_token_is_cached_then_renewed_before_expiry():
    clock = FakeClock(1000.0)
    source = SasTokenSource(
        ServiceConnectionString.parse(GOOD), ttl=3600, renew_before=300, clock=clock
    )
    first = source.token()

    clock.now += 3600 - 301
    assert source.token() is first
    clock.now += 2
    renewed = source.token()

    assert renewed != first
    assert source.expiry == int(clock.now) + 3600
    assert "sig=" not in repr(source)


def test_renewal_window_must_fit_the_lifetime():
    with pytest.raises(ValueError, match="renew_before"):
        SasTokenSource(ServiceConnectionString.parse(GOOD), ttl=60, renew_before=60)
