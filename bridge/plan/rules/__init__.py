"""Translate AWS IoT topic rules into Azure IoT Hub message routes, or say exactly why not."""

from __future__ import annotations

from bridge.errors import RuleSqlError
from bridge.plan.rules.models import (
    EndpointSuggestion,
    Finding,
    FindingCode,
    RouteSource,
    RuleTranslation,
)
from bridge.plan.rules.sql import parse_rule_sql
from bridge.plan.rules.topics import (
    TOPIC_LEVEL_PROPERTY_PREFIX,
    TOPIC_PROPERTY,
    topic_level_property,
)
from bridge.plan.rules.translate import translate_topic_rule, translate_topic_rules

__all__ = [
    "TOPIC_LEVEL_PROPERTY_PREFIX",
    "TOPIC_PROPERTY",
    "EndpointSuggestion",
    "Finding",
    "FindingCode",
    "RouteSource",
    "RuleSqlError",
    "RuleTranslation",
    "parse_rule_sql",
    "topic_level_property",
    "translate_topic_rule",
    "translate_topic_rules",
]
