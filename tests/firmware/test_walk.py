"""The scanner's walk: binaries and huge files skipped, vendored folders marked."""

from __future__ import annotations

from bridge.firmware import scan
from bridge.firmware.walk import MAX_FILE_BYTES, is_vendored, walk

ENDPOINT = b'HOST = "abc123-ats.iot.eu-west-1.amazonaws.com"\n'


def test_binaries_and_huge_files_are_skipped(tmp_path):
    (tmp_path / "firmware.bin").write_bytes(b"\0\1" + ENDPOINT)
    (tmp_path / "blob.dat").write_bytes(b"\0" * 10 + ENDPOINT)
    (tmp_path / "huge.py").write_bytes(ENDPOINT * (MAX_FILE_BYTES // len(ENDPOINT) + 1))
    (tmp_path / "settings.py").write_bytes(ENDPOINT)
    stats: dict[str, int] = {}
    assert [c.path for c in walk(str(tmp_path), stats)] == ["settings.py"]
    assert stats == {"scanned": 1, "skipped": 3}


def test_vendored_folders_are_marked_and_vcs_folders_skipped(tmp_path):
    for folder in ("node_modules/sdk", "libraries/Aws", "vendor/x", "src", ".git/objects"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "a.py").write_bytes(ENDPOINT)
    found = {c.path: c.vendored for c in walk(str(tmp_path), {})}
    assert found == {
        "node_modules/sdk/a.py": True,
        "libraries/Aws/a.py": True,
        "vendor/x/a.py": True,
        "src/a.py": False,
    }
    assert is_vendored("components/esp-aws-iot/x.c")
    assert not is_vendored("src/main.c")


def test_an_empty_repository_scans_clean(tmp_path):
    report = scan(tmp_path)
    assert report.files == []
    assert report.counts() == {"rewritten": 0, "needs_human": 0}
