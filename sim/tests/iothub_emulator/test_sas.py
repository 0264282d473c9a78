"""SAS tokens: our tokens against the SDK's, and rejection of bad ones."""

from __future__ import annotations

import time

import pytest
from azure.iot.hub.sastoken import SasToken as SdkSasToken

from bridge_sim.iothub.sas import SasError, generate_key, generate_token, parse_token, verify_token


def test_sdk_service_token_verifies():
    key = generate_key()
    token = str(SdkSasToken("127.0.0.1:8443", key, "iothubowner"))
    parsed = verify_token(token, [key], resource="127.0.0.1:8443")
    assert parsed.key_name == "iothubowner"
    assert parsed.resource == "127.0.0.1:8443"


def test_sdk_device_token_verifies_with_the_secondary_key():
    primary, secondary = generate_key(), generate_key()
    token = str(SdkSasToken("myhub.azure-devices.net/devices/d1", secondary))
    parsed = verify_token(
        token, (primary, secondary), resource="myhub.azure-devices.net/devices/d1"
    )
    assert parsed.key_name is None


def test_our_token_matches_the_sdk_byte_for_byte():
    key = generate_key()
    sdk = SdkSasToken("myhub.azure-devices.net", key, "service", ttl=100)
    assert generate_token(
        "myhub.azure-devices.net", key, key_name="service", expiry=sdk.expiry_time
    ) == str(sdk)


def test_a_token_for_a_device_scope_covers_its_modules_only():
    key = generate_key()
    token = generate_token("hub/devices/d1", key)
    verify_token(token, [key], resource="hub/devices/d1/modules/m1")
    with pytest.raises(SasError, match="not"):
        verify_token(token, [key], resource="hub/devices/d10")


@pytest.mark.parametrize(
    "token",
    [
        "Bearer abc",
        "SharedAccessSignature sr=a&sig=b",
        "SharedAccessSignature sr=a&sig=b&se=soon",
        "SharedAccessSignature sr=a&sr=a&sig=b&se=1",
        "SharedAccessSignature junk",
    ],
)
def test_malformed_tokens(token):
    with pytest.raises(SasError):
        parse_token(token)


def test_wrong_key_and_expiry_are_rejected():
    key = generate_key()
    with pytest.raises(SasError, match="signature"):
        verify_token(generate_token("hub", key), [generate_key()])
    with pytest.raises(SasError, match="expired"):
        verify_token(generate_token("hub", key, expiry=int(time.time()) - 1), [key])


def test_tampered_expiry_breaks_the_signature():
    key = generate_key()
    token = generate_token("hub", key, expiry=int(time.time()) + 60)
    parsed = parse_token(token)
    tampered = token.replace(f"se={parsed.expiry}", f"se={parsed.expiry + 3600}")
    with pytest.raises(SasError, match="signature"):
        verify_token(tampered, [key])
