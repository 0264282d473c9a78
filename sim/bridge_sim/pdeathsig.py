"""Child processes that die with the stand-ins, even when these are killed with SIGKILL.

`spawn` is `asyncio.create_subprocess_exec` for every long-running child the stand-ins start
(mosquitto, Azurite's node process, the fleet's shard processes). The child asks Linux for
SIGTERM when its parent dies (`prctl(PR_SET_PDEATHSIG)`), so a test runner or an
`iot-bridge sim up` killed with -9 leaves no mosquitto or node holding ports and files.

Why an exec wrapper and not `preexec_fn`: the stand-ins' process is full of threads at the
moment it starts a child (moto's server, the certificate worker, asyncio's child watchers
and `to_thread` pool, test loops), and Python documents `preexec_fn` as not safe with
threads: the child runs Python between `fork` and `exec` and can deadlock on a lock
another thread held at the fork. Python 3.11 has no `Popen` option for the parent-death
signal (`start_new_session` and `process_group` cover only `setsid`/`setpgid`). So the
child execs this very file first, with `python -I -S` (standard library only, no site, no
PYTHON* variables; the program still gets the whole environment), which sets the signal
and then execs the real program in the same process: the pid the caller sees is the
program's, and the signal survives `execve` (not that of a set-user-ID program). The
wrapper also closes the race that `setpriv --pdeathsig` (util-linux) leaves open: a parent
that died before the signal was set is noticed (`getppid` changed), the program never runs.

The caveat: Linux sends the signal when the *thread* that forked the child ends, not the
process. asyncio forks in the thread running the event loop (`subprocess.Popen` is called
synchronously from `loop.subprocess_exec`), which is why `spawn` is a coroutine: callers
can only call it on their loop, never from `asyncio.to_thread`. A stand-in's children then
live as long as its loop's thread, which outlives the stand-in (tests that run an emulator
on a loop thread stop it on that thread before the thread ends).

Elsewhere than Linux the program is started directly, without the signal.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

__all__ = ["spawn"]

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_DEATH_SIGNAL = signal.SIGTERM  # lets mosquitto and Azurite close their files
_WRAPPER = str(Path(__file__).resolve())


async def spawn(
    program: str | os.PathLike[str], *args: str, **kwargs: Any
) -> asyncio.subprocess.Process:
    """`asyncio.create_subprocess_exec(program, *args, **kwargs)`; the child dies with us."""
    import asyncio  # noqa: PLC0415 - not at the top: the wrapper runs this file at every spawn

    found = shutil.which(program)
    if found is None:  # what Popen raises, raised here rather than by the wrapper's exec
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(program))
    found = str(Path(found).absolute())  # noqa: ASYNC240 - no I/O; a `cwd=` must not change the program
    if not sys.platform.startswith("linux"):
        return await asyncio.create_subprocess_exec(found, *args, **kwargs)
    return await asyncio.create_subprocess_exec(
        sys.executable, "-I", "-S", _WRAPPER, str(os.getpid()), found, *args, **kwargs
    )


def _exec_tied_to_parent(parent: int, argv: list[str]) -> None:
    """The wrapper: set the parent-death signal, check the parent is still there, exec."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, int(_DEATH_SIGNAL), 0, 0, 0) != 0:
        sys.exit(f"{_WRAPPER}: prctl(PR_SET_PDEATHSIG): {os.strerror(ctypes.get_errno())}")
    if os.getppid() != parent:
        sys.exit(f"{_WRAPPER}: parent {parent} died before {argv[0]} started")
    os.execv(argv[0], argv)  # noqa: S606 - the caller's own program, resolved by `spawn`


if __name__ == "__main__":
    _exec_tied_to_parent(int(sys.argv[1]), sys.argv[2:])
