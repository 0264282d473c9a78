"""Device resolution from topics, and the topic routes the plan records for the relay."""

import json

import pytest

from bridge.config import Settings
from bridge.errors import ConfigError
from bridge.mapping.telemetry import (
    TopicRoute,
    default_device_level,
    parse_route,
    resolve_device,
    routes_from_plan,
    topic_matches,
)
from bridge.plan.rules import translate_topic_rule
from bridge.relay.service import relay_routes


@pytest.mark.parametrize(
    ("topic_filter", "topic", "expected"),
    [
        ("dt/+/telemetry/#", "dt/pump-1/telemetry/temp", True),
        ("dt/+/telemetry/#", "dt/pump-1/telemetry", True),  # '#' matches the parent level
        ("dt/+/telemetry/#", "dt/pump-1/status", False),
        ("dt/+", "dt/pump-1/x", False),
        ("dt/+", "dt/", True),
        ("#", "$aws/things/x/shadow/update", False),
        ("esp8266tempsensors/#", "esp8266tempsensors/a/b", True),
    ],
)
def test_topic_matches_like_mqtt(topic_filter, topic, expected):
    assert topic_matches(topic_filter, topic) is expected


def test_the_configured_level_names_the_device_and_nothing_is_guessed():
    routes = [parse_route("dt/+/telemetry/#=2"), parse_route("fleet/#=3")]
    assert resolve_device(routes, "dt/pump-1/telemetry/temp") == "pump-1"
    assert resolve_device(routes, "fleet/eu/pump-9/x") == "pump-9"
    # The level is missing or empty: no device, not a neighbouring level.
    assert resolve_device(routes, "fleet/eu") is None
    assert resolve_device(routes, "dt//telemetry") is None
    assert resolve_device(routes, "other/pump-1") is None


@pytest.mark.parametrize("text", ["dt/+/#", "dt/+/#=x", "dt/+/#=0", "dt/#/x=1", "dt/a+=1"])
def test_malformed_relay_topics_are_refused(text):
    with pytest.raises(ValueError, match=r"relay topic|topic filter"):
        parse_route(text)


def test_default_level_is_the_only_single_level_wildcard():
    assert default_device_level("dt/+/telemetry/#") == 2
    assert default_device_level("a/+/+") is None
    assert default_device_level("esp8266tempsensors/#") is None


def _rule(sql, name="r"):
    return {"ruleName": name, "sql": sql, "actions": [], "ruleDisabled": False}


def test_the_rule_analysis_finds_the_device_level():
    by_filter = translate_topic_rule(_rule("SELECT * FROM 'dt/+/telemetry/#'"))
    assert (by_filter.topic_filter, by_filter.device_level) == ("dt/+/telemetry/#", 2)
    named = translate_topic_rule(_rule("SELECT *, topic(3) AS thingName FROM 'fleet/#'"))
    assert named.device_level == 3
    unknown = translate_topic_rule(_rule("SELECT * FROM 'esp8266tempsensors/#'"))
    assert unknown.device_level is None


def test_routes_from_a_plan_keep_enabled_device_message_rules_with_a_level():
    plan = {
        "rules": [
            {"topic_filter": "dt/+/telemetry/#", "device_level": 2, "source": "DeviceMessages"},
            {"topic_filter": "dt/+/telemetry/#", "device_level": 2, "source": "DeviceMessages"},
            {"topic_filter": "x/#", "device_level": None, "source": "DeviceMessages"},
            {"topic_filter": "y/+", "device_level": 2, "enabled": False},
            {
                "topic_filter": "$aws/things/+/shadow/update",
                "device_level": 3,
                "source": "TwinChangeEvents",
            },
        ]
    }
    assert routes_from_plan(plan) == [TopicRoute("dt/+/telemetry/#", 2)]


def test_the_settings_override_the_plan_and_no_topics_at_all_is_a_config_error(tmp_path):
    plan = tmp_path / "plan.json"
    rule = {"topic_filter": "dt/+/telemetry/#", "device_level": 2, "source": "DeviceMessages"}
    plan.write_text(json.dumps({"rules": [rule]}))
    assert relay_routes(Settings(), plan) == [TopicRoute("dt/+/telemetry/#", 2)]
    overridden = Settings(relay={"topics": ["fleet/#=3"]})
    assert relay_routes(overridden, plan) == [TopicRoute("fleet/#", 3)]
    with pytest.raises(ConfigError, match="no telemetry topics"):
        relay_routes(Settings(), None)
    with pytest.raises(ConfigError, match="filter=device-level"):
        relay_routes(Settings(relay={"topics": ["fleet/#"]}), None)
