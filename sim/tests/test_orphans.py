"""The stand-ins' children die with the process that started them, even killed with SIGKILL."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bridge_sim import pdeathsig
from bridge_sim.pdeathsig import spawn

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")

# Mosquitto on the main loop (as `iot-bridge sim up` runs it) and Azurite on a loop of its
# own thread (as the session-wide emulators of the suite run), in a process of their own.
DRIVER = """
import asyncio, sys, threading
from pathlib import Path
from bridge_sim.aws.broker import MosquittoBroker
from bridge_sim.azurite import Azurite
from bridge_sim.pki import CertificateAuthority

workdir = Path(sys.argv[1])
azurite_up = threading.Event()

async def azurite():
    async with Azurite(workdir=workdir / "azurite"):
        azurite_up.set()
        await asyncio.Event().wait()

async def main():
    threading.Thread(target=asyncio.run, args=(azurite(),), daemon=True).start()
    ca = CertificateAuthority.create("orphans ca")
    server = ca.issue_server("127.0.0.1", "localhost")
    async with MosquittoBroker(workdir=workdir / "broker", server_cert=server,
                               trust_pems=[ca.cert_pem]):
        await asyncio.to_thread(azurite_up.wait)
        print("stand-ins up", flush=True)
        await asyncio.Event().wait()

asyncio.run(main())
"""
START_TIMEOUT_S = 90.0  # Azurite's node start alone takes seconds on a busy machine
EXIT_TIMEOUT_S = 30.0


def _stat(pid: int) -> tuple[int, str, int] | None:
    """(parent pid, state, start time) of a process, None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2 :].split()  # the name in parentheses may hold spaces
    return int(fields[1]), fields[0], int(fields[19])


def _descendants(root: int) -> dict[int, int]:
    """Every live descendant of `root`: pid to start time (to tell a reused pid apart)."""
    table: dict[int, tuple[int, int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            table[int(entry.name)] = (stat[0], stat[2])
    found: dict[int, int] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, started) in table.items():
            if ppid == parent and pid not in found:
                found[pid] = started
                frontier.append(pid)
    return found


def _alive(pid: int, started: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[1] not in "ZX" and stat[2] == started


def _cmdline(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    return ""


async def test_children_die_with_a_stand_in_process_killed_by_sigkill(tmp_path: Path) -> None:
    driver = await asyncio.create_subprocess_exec(
        sys.executable, "-c", DRIVER, str(tmp_path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert driver.stdout is not None
    children: dict[int, int] = {}
    output: list[bytes] = []  # the stand-ins' logs, then the driver's line saying they are up
    try:
        async with asyncio.timeout(START_TIMEOUT_S):
            while (line := await driver.stdout.readline()) not in {b"", b"stand-ins up\n"}:
                output.append(line)
        assert line, b"".join(output[-40:]).decode(errors="replace")
        children = _descendants(driver.pid)
        commands = [_cmdline(pid) for pid in children]
        assert any("mosquitto" in c for c in commands), commands
        assert any("azurite" in c for c in commands), commands

        driver.kill()
        await driver.wait()
        deadline = time.monotonic() + EXIT_TIMEOUT_S
        while (left := {p: _cmdline(p) for p, t in children.items() if _alive(p, t)}) and (
            time.monotonic() < deadline
        ):
            await asyncio.sleep(0.05)
        assert not left, f"orphans outlived their parent: {left}"
    finally:
        if driver.returncode is None:
            children = children or _descendants(driver.pid)
            driver.kill()
            await driver.wait()
        for pid, started in children.items():  # a failed run leaves no orphans behind
            if _alive(pid, started):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def test_a_child_whose_parent_died_before_the_signal_was_set_never_starts(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "started"
    not_the_parent = os.getpid()  # the wrapper's parent is the shell below, not this process
    result = subprocess.run(  # noqa: S603 - fixed arguments
        [
            "/bin/sh", "-c", '"$@"; true', "sh",
            sys.executable, "-I", "-S", pdeathsig.__file__, str(not_the_parent),
            "/bin/sh", "-c", f"touch {marker}",
        ],
        capture_output=True,
        text=True,
        check=True,
    )  # fmt: skip
    assert "died before" in result.stderr
    assert not marker.exists()


async def test_spawn_raises_as_popen_does_for_a_missing_program(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        await spawn(tmp_path / "no-such-program")
