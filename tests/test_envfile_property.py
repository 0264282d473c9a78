"""The env file round trip: what `write_env_file` writes, `--env-file` reads back unchanged.

`iot-bridge sim up` and `rehearse` write connection strings and keys with
`bridge_sim.envfile.write_env_file`; every command reads them through pydantic-settings'
dotenv source (`CloudSettings(_env_file=...)`, `Settings(_env_file=...)`). Values carry
quotes, `=`, `;`, `#`, backslashes, newlines and non-ASCII text in practice.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bridge.config import CloudSettings, Settings
from bridge_sim.envfile import write_env_file

# Settings read from the env file and from nowhere else in the test environment.
_CLOUD = ("IOTHUB_CONNECTION_STRING", "IOTHUB_GATEWAY_HOST", "AWS_IOT_DATA_ENDPOINT")
_BRIDGE = ("BRIDGE_STORE__DSN", "BRIDGE_MIRROR__CLIENT_ID")

values = st.text(
    # Surrogates cannot be encoded and NUL cannot be an environment value anywhere.
    st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"),
    max_size=30,
) | st.sampled_from(["a=b", "#x", "x #y", 'say "hi"', "it's", "a\\nb", "\\", "line\nbreak"])


def _read(path: Path) -> dict[str, Any]:
    cloud = CloudSettings(_env_file=path)
    bridge = Settings(_env_file=path)
    secret = cloud.IOTHUB_CONNECTION_STRING
    return {
        "IOTHUB_CONNECTION_STRING": secret.get_secret_value() if secret else "",
        "IOTHUB_GATEWAY_HOST": cloud.IOTHUB_GATEWAY_HOST,
        "AWS_IOT_DATA_ENDPOINT": cloud.AWS_IOT_DATA_ENDPOINT,
        "BRIDGE_STORE__DSN": bridge.store.dsn,
        "BRIDGE_MIRROR__CLIENT_ID": bridge.mirror.client_id,
    }


@pytest.fixture(scope="module", autouse=True)
def _clean_environment() -> Any:
    assert not any(name in os.environ for name in (*_CLOUD, *_BRIDGE))
    return


# Found by this test: a carriage return came back as a newline (the reader's universal
# newlines). "${...}" is expanded by the reader in any value and cannot be escaped: the
# writer refuses it (below).
@example(dict.fromkeys(_CLOUD + _BRIDGE, "a\rb"), "")
@example(dict.fromkeys(_CLOUD + _BRIDGE, "HostName=h;SharedAccessKey=k+/=="), "header\nline")
@example(dict.fromkeys(_CLOUD + _BRIDGE, "ünïcödé ✓ 'q' \"qq\" # not a comment"), "")
@given(
    st.fixed_dictionaries(dict.fromkeys(_CLOUD + _BRIDGE, values.filter(lambda v: "${" not in v))),
    st.text(max_size=20),
)
def test_values_round_trip(tmp_path_factory: Any, written: dict[str, str], header: str) -> None:
    path = tmp_path_factory.mktemp("env") / ".env.sim"
    write_env_file(path, written, header=header)
    assert _read(path) == written


@pytest.mark.parametrize("value", ["${HOME}", "a${X:-y}b", "nul\x00"])
def test_values_the_reader_would_change_are_refused(tmp_path: Path, value: str) -> None:
    path = tmp_path / ".env.sim"
    path.write_text("OLD=1\n")
    with pytest.raises(ValueError, match="IOTHUB_GATEWAY_HOST"):
        write_env_file(path, {"IOTHUB_GATEWAY_HOST": value})
    assert path.read_text() == "OLD=1\n"
