"""`iot-bridge firmware scan` on a synthetic 50,000-file device repository.

Usage: python bench/firmware.py [FILES]. Generates a repository in a temp dir (mostly
ordinary sources, about 1% touching AWS IoT, some binaries and huge files, a vendored
node_modules tree), scans it in a child process, and prints files/s and the child's
peak RSS next to `grep -rl amazonaws` over the same tree as a baseline.
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FILES = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000

PLAIN = {
    ".c": "#include <stdio.h>\n\nint add_{n}(int a, int b) {{\n    return a + b; /* {n} */\n}}\n",
    ".h": "#ifndef H_{n}\n#define H_{n}\nint add_{n}(int a, int b);\n#endif\n",
    ".py": "def handler_{n}(event):\n    return {{'id': {n}, 'ok': True}}\n",
    ".js": "module.exports = function f{n}(x) {{ return x * {n}; }};\n",
    ".md": "# Notes {n}\n\nNothing to see here.\n",
}
AWS = {
    "sensor_{n}.py": (
        "from umqtt.simple import MQTTClient\n"
        'ENDPOINT = "abc{n}-ats.iot.eu-west-1.amazonaws.com"\n'
        "c = MQTTClient('dev{n}', ENDPOINT, port=8883, keepalive=60, ssl=True)\n"
        "c.connect()\nc.publish('dt/dev{n}/t', '{{}}')\n"
    ),
    "app_{n}.c": (
        '#include "core_mqtt.h"\n#define democonfigMQTT_BROKER_ENDPOINT '
        '"abc{n}-ats.iot.us-east-1.amazonaws.com"\n'
    ),
    "deploy_{n}.sh": "EP=$(aws iot describe-endpoint --endpoint-type iot:Data-ATS)\n",
}


def generate(root: Path, files: int) -> None:
    rng = random.Random(12)
    plain = list(PLAIN.items())
    aws = list(AWS.items())
    for n in range(files):
        directory = root / f"src/mod{n % 500}/sub{n % 7}"
        if n % 50 == 0:
            directory = root / f"node_modules/pkg{n % 300}/lib"
        directory.mkdir(parents=True, exist_ok=True)
        roll = rng.random()
        if roll < 0.01:
            name, template = aws[n % len(aws)]
            (directory / name.format(n=n)).write_text(template.format(n=n))
        elif roll < 0.02:
            (directory / f"blob{n}.bin").write_bytes(os.urandom(2048))
        elif roll < 0.0205:
            (directory / f"dump{n}.log").write_bytes(b"x" * (3 * 1024 * 1024))
        else:
            suffix, template = plain[n % len(plain)]
            (directory / f"file{n}{suffix}").write_text(template.format(n=n) * 20)


SCAN = """
import json, resource, sys, time
from pathlib import Path
from bridge.firmware import scan
start = time.perf_counter()
report = scan(Path(sys.argv[1]))
elapsed = time.perf_counter() - start
print(json.dumps({
    "seconds": elapsed,
    "scanned": report.files_scanned,
    "skipped": report.files_skipped,
    "with_aws": len(report.files),
    "touch_points": len(report.touch_points),
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
"""


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="firmware-bench-"))
    try:
        start = time.perf_counter()
        generate(root, FILES)
        print(f"generated {FILES} files in {time.perf_counter() - start:.1f}s under {root}")
        grep = shutil.which("grep")
        assert grep is not None
        start = time.perf_counter()
        found = subprocess.run(  # noqa: S603 - our own tree, our own arguments
            [grep, "-rlI", "amazonaws", str(root)], capture_output=True, text=True, check=False
        )
        grep_seconds = time.perf_counter() - start
        child = subprocess.run(  # noqa: S603 - this interpreter, our own script
            [sys.executable, "-c", SCAN, str(root)], capture_output=True, text=True, check=True
        )
        result = json.loads(child.stdout)
        total = result["scanned"] + result["skipped"]
        print(
            f"iot-bridge firmware scan: {total} files in {result['seconds']:.2f}s = "
            f"{total / result['seconds']:,.0f} files/s, peak RSS {result['peak_rss_mb']:.0f} MB; "
            f"{result['with_aws']} files with AWS IoT usage, "
            f"{result['touch_points']} touch points, {result['skipped']} skipped (binary or huge)"
        )
        grep_files = len(found.stdout.splitlines())
        print(
            f"baseline grep -rlI amazonaws: {grep_seconds:.2f}s = "
            f"{FILES / grep_seconds:,.0f} files/s, {grep_files} files matched"
        )
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"bench process (the generator) peak RSS {own:.0f} MB")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
