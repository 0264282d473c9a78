"""What every harness shares: seeds into a scratch corpus, crash files kept aside, atheris.

Each harness module defines `test_one_input(data: bytes)`, which raises only when the
parser misbehaves, and `SEEDS`; running the module as a script fuzzes it with atheris
(libFuzzer flags such as `-max_total_time=60` pass through). The function needs no
atheris, so `tests/fuzz` runs it over the seeds in the ordinary suite.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from pathlib import Path

__all__ = ["fuzz"]

_HERE = Path(__file__).resolve().parent


def fuzz(name: str, target: Callable[[bytes], None], seeds: Iterable[bytes]) -> None:
    """Run `target` under atheris with `sys.argv` as libFuzzer's arguments."""
    import atheris  # noqa: PLC0415 - only the fuzzing run needs it (the `fuzz` extra)

    args = list(sys.argv)
    if not any(not arg.startswith("-") for arg in args[1:]):
        # No corpus given: start from the seeds, in a scratch directory libFuzzer may grow.
        corpus = _HERE / ".corpus" / name
        corpus.mkdir(parents=True, exist_ok=True)
        for index, seed in enumerate(seeds):
            (corpus / f"seed-{index}").write_bytes(seed)
        args.append(str(corpus))
    if not any(arg.startswith("-artifact_prefix=") for arg in args):
        artifacts = _HERE / ".artifacts" / name
        artifacts.mkdir(parents=True, exist_ok=True)
        args.append(f"-artifact_prefix={artifacts}/")
    atheris.instrument_all()
    atheris.Setup(args, target)
    atheris.Fuzz()
