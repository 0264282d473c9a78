"""Atomic writes: an interrupted write leaves the old file whole and no stray temporary."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bridge import files
from bridge.discover import output
from bridge.discover.output import write_inventory
from bridge.files import open_atomically, write_atomically
from bridge.inventory.models import Inventory
from bridge.mapping.models import PlanOptions
from bridge.plan.loader import parse_inventory
from bridge.plan.planner import PLAN_FILE, build_plan, write_plan
from bridge_sim.envfile import write_env_file


def _inventory(*things: str) -> Inventory:
    return Inventory.model_validate(
        {
            "generated_at": "2026-01-01T00:00:00Z",
            "region": "eu-west-1",
            "things": [{"name": name} for name in things],
        }
    )


def _leftovers(directory: Path, keep: set[str]) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name not in keep)


def test_write_replaces_the_file_and_sets_the_mode(tmp_path: Path) -> None:
    path = tmp_path / "out.txt"
    path.write_text("old")
    write_atomically(path, "new é\n", mode=0o640)
    assert path.read_text(encoding="utf-8") == "new é\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert _leftovers(tmp_path, {"out.txt"}) == []


def test_a_write_that_fails_midway_keeps_the_old_file(tmp_path, monkeypatch) -> None:
    path = tmp_path / "out.txt"
    path.write_text("old")

    def write_half() -> None:
        with open_atomically(path) as out:
            out.write("half of the new")
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_half()
    assert path.read_text() == "old"
    assert _leftovers(tmp_path, {"out.txt"}) == []

    def no_space(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", no_space)
    with pytest.raises(OSError, match="No space"):
        write_atomically(path, "new")
    assert path.read_text() == "old"
    assert _leftovers(tmp_path, {"out.txt"}) == []


def test_an_interrupted_inventory_is_not_read_as_valid(tmp_path, monkeypatch) -> None:
    path = tmp_path / "inventory.json"
    write_inventory(_inventory("a"), path)
    before = path.read_text()
    calls = 0
    real_item = output._item

    def item_then_crash(model):
        nonlocal calls
        calls += 1
        if calls == 2:
            raise KeyboardInterrupt  # Ctrl-C halfway through the things
        return real_item(model)

    monkeypatch.setattr(output, "_item", item_then_crash)
    with pytest.raises(KeyboardInterrupt):
        write_inventory(_inventory("a", "b", "c"), path)
    assert path.read_text() == before
    assert [t.name for t in parse_inventory(path.read_text()).things] == ["a"]
    assert _leftovers(tmp_path, {"inventory.json"}) == []


def test_plan_files_are_written_atomically(tmp_path, monkeypatch) -> None:
    result = build_plan(_inventory("a"), PlanOptions())
    written = write_plan(result, tmp_path)
    before = {p.name: p.read_text() for p in written}
    real_replace = Path.replace

    def fail_on_plan(self: Path, target):
        if Path(target).name == PLAN_FILE:
            raise OSError("interrupted")
        return real_replace(self, target)

    monkeypatch.setattr(Path, "replace", fail_on_plan)
    with pytest.raises(OSError, match="interrupted"):
        write_plan(build_plan(_inventory("a", "b"), PlanOptions()), tmp_path)
    assert (tmp_path / PLAN_FILE).read_text() == before[PLAN_FILE]
    assert _leftovers(tmp_path, set(before)) == []


def test_env_file_is_private_from_the_first_byte(tmp_path, monkeypatch) -> None:
    path = tmp_path / ".env.sim"
    modes: list[int] = []
    real_write = os.fdopen

    def spy(fd, *args, **kwargs):
        modes.append(stat.S_IMODE(os.fstat(fd).st_mode))
        return real_write(fd, *args, **kwargs)

    monkeypatch.setattr(files.os, "fdopen", spy)
    write_env_file(path, {"IOTHUB_CONNECTION_STRING": "HostName=h;SharedAccessKey=k"})
    assert modes == [0o600]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_writer_killed_midway_leaves_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "inventory.json"
    path.write_text('{"old": true}')
    child = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from bridge.files import open_atomically
        with open_atomically(Path({str(path)!r})) as out:
            out.write('{{"new": ')
            out.flush()
            print("half", flush=True)
            sys.stdin.read()  # wait to be killed
        """
    )
    with subprocess.Popen(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", child], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None
        assert process.stdout.readline() == "half\n"
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert path.read_text() == '{"old": true}'
    # A kill -9 cannot clean up; what it leaves is a hidden temporary, never the file itself.
    assert all(
        name.startswith(".inventory.json.") and name.endswith(".tmp")
        for name in _leftovers(tmp_path, {"inventory.json"})
    )
