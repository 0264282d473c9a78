import json
import logging

import pytest
import structlog

from bridge.logging import configure_logging, get_logger


def test_loggers_made_before_configuration_follow_it(capsys: pytest.CaptureFixture[str]) -> None:
    early = get_logger("early")
    configure_logging("WARNING", json=True)
    early.info("not.shown")
    early.warning("aws.message_dropped", device_id="t1")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    assert [line["event"] for line in lines] == ["aws.message_dropped"]
    assert lines[0]["component"] == "early"
    assert lines[0]["device_id"] == "t1"
    assert lines[0]["level"] == "warning"


@pytest.fixture(autouse=True)
def _restore_logging():
    """configure_logging binds the test's captured stderr, which closes with the test: put
    structlog back, or a log line from a session-wide stand-in later writes to a closed file."""
    yield
    structlog.reset_defaults()
    for handler in logging.getLogger().handlers[:]:
        logging.getLogger().removeHandler(handler)
