"""Fuzz the env file round trip: a value is refused by the writer or read back unchanged.

The input is split on NUL into values for three settings; they are written with
`bridge_sim.envfile.write_env_file` and read the way every `--env-file` is read.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from bridge.config import CloudSettings, Settings
from bridge_sim.envfile import write_env_file

_FILE = Path(tempfile.mkdtemp(prefix="fuzz-env-")) / ".env"
_KEYS = ("IOTHUB_CONNECTION_STRING", "IOTHUB_GATEWAY_HOST", "BRIDGE_MIRROR__CLIENT_ID")


def test_one_input(data: bytes) -> None:
    parts = data.decode("utf-8", "replace").split("\x00")
    values = dict(zip(_KEYS, [*parts, "", ""][:3], strict=True))
    try:
        write_env_file(_FILE, values)
    except ValueError:
        return  # a value the dotenv reader could not give back: refused, file untouched
    cloud = CloudSettings(_env_file=_FILE)
    secret = cloud.IOTHUB_CONNECTION_STRING
    read = {
        "IOTHUB_CONNECTION_STRING": secret.get_secret_value() if secret else "",
        "IOTHUB_GATEWAY_HOST": cloud.IOTHUB_GATEWAY_HOST,
        "BRIDGE_MIRROR__CLIENT_ID": Settings(_env_file=_FILE).mirror.client_id,
    }
    if read != values:
        raise AssertionError(f"wrote {values!r}, read back {read!r}")


SEEDS = (
    b"HostName=h.azure-devices.net;SharedAccessKeyName=o;SharedAccessKey=a2V5+/==\x00h:8443\x00c",
    b'say "hi"\x00a=b #c\x00line\nbreak\\',
    "ünïcödé ✓\x00'single'\x00\r\n".encode(),
)

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from fuzz._harness import fuzz

    fuzz("envfile", test_one_input, SEEDS)
