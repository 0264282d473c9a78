"""One rule for log event names, product and stand-ins alike: `area.what_happened`.

Event names are what operators grep and alert on, so they are identifiers, not prose;
the details go in key-value pairs (patterns.md, section 7).
"""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LEVELS = {"debug", "info", "warning", "error", "exception", "critical", "msg"}
EVENT = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")


def log_calls(path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in LEVELS
            and isinstance(node.func.value, ast.Name | ast.Attribute)
            and "log" in ast.unparse(node.func.value).lower()
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.lineno, node.args[0].value


def test_every_log_event_is_a_dotted_name():
    offenders = [
        f"{path.relative_to(ROOT)}:{line} {event!r}"
        for folder in ("bridge", "sim/bridge_sim")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for line, event in log_calls(path)
        if not EVENT.match(event)
    ]
    assert offenders == []


def test_the_rule_catches_prose(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text('_log.info("device connected", device_id=d)\n_log.info("aws.connected")\n')
    assert [event for _line, event in log_calls(sample) if not EVENT.match(event)] == [
        "device connected"
    ]
