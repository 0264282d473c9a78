"""One AWS topic rule in, one `RuleTranslation` out: route condition, endpoints, findings."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from bridge.errors import RuleSqlError
from bridge.mapping.telemetry import device_level_of
from bridge.plan.rules.ast import (
    Access,
    Binary,
    Call,
    Case,
    Cast,
    Expr,
    Literal,
    NestedSelect,
    RuleQuery,
    Unary,
)
from bridge.plan.rules.conditions import WhereTranslator, construct_findings, unsupported_function
from bridge.plan.rules.endpoints import suggest_endpoint
from bridge.plan.rules.functions import has_routing_equivalent
from bridge.plan.rules.models import Finding, FindingCode, RouteSource, RuleTranslation
from bridge.plan.rules.routing import all_of, render
from bridge.plan.rules.sql import parse_rule_sql
from bridge.plan.rules.topics import topic_condition, topic_source

__all__ = ["translate_topic_rule", "translate_topic_rules"]

_CURRENT_SQL_VERSION = "2016-03-23"
# AWS applies 2015-10-08 when a rule does not say.
_DEFAULT_SQL_VERSION = "2015-10-08"


def translate_topic_rules(rules: Iterable[Mapping[str, Any]]) -> list[RuleTranslation]:
    """Translate every rule of an inventory, in order."""
    return [translate_topic_rule(rule) for rule in rules]


def translate_topic_rule(rule: Mapping[str, Any]) -> RuleTranslation:
    """Translate `iot.get_topic_rule(ruleName=...)["rule"]` into an IoT Hub route suggestion."""
    issues = _rule_findings(rule)
    endpoints = tuple(
        suggest_endpoint(action_type, settings or {})
        for action in rule.get("actions", [])
        for action_type, settings in action.items()
    )
    topic_filter = source = condition = None
    device_level: int | None = None
    try:
        query = parse_rule_sql(str(rule.get("sql", "")))
    except RuleSqlError as exc:
        issues.append(
            _finding(
                FindingCode.SQL_ERROR,
                f"the rule's SQL does not parse: {exc}",
                "fix the rule in AWS, then plan again",
            )
        )
    else:
        topic_filter = query.topic_filter
        device_level = device_level_of(topic_filter, _topic_calls(query))
        issues.extend(_select_findings(query))
        source, condition = _route(query, issues)
    return RuleTranslation(
        rule_name=str(rule.get("ruleName", "")),
        enabled=not rule.get("ruleDisabled", False),
        topic_filter=topic_filter,
        device_level=device_level,
        source=source,
        route_condition=condition,
        endpoints=endpoints,
        issues=tuple(issues),
    )


def _route(query: RuleQuery, issues: list[Finding]) -> tuple[RouteSource | None, str | None]:
    """The routing source and condition for a parsed rule, adding findings to `issues`."""
    source, reserved = topic_source(query.topic_filter)
    if reserved is not None:
        # Reserved topics arrive on other sources with other bodies: no condition carries over.
        issues.append(reserved)
        return source, None
    condition, topic_issues = topic_condition(query.topic_filter)
    issues.extend(topic_issues)
    if query.where is not None:
        where = WhereTranslator()
        condition = all_of(condition, where.translate(query.where))
        issues.extend(finding for finding in where.findings if finding not in issues)
    return source, render(condition)


def _rule_findings(rule: Mapping[str, Any]) -> list[Finding]:
    issues: list[Finding] = []
    if rule.get("ruleDisabled", False):
        issues.append(
            _finding(
                FindingCode.RULE_DISABLED,
                "the AWS rule is disabled",
                "create the route disabled (isEnabled=false) or leave it out",
            )
        )
    version = rule.get("awsIotSqlVersion") or _DEFAULT_SQL_VERSION
    if version != _CURRENT_SQL_VERSION:
        issues.append(
            _finding(
                FindingCode.SQL_VERSION,
                f"SQL version {version!r}: translated with {_CURRENT_SQL_VERSION} "
                "semantics (2015-10-08 differs in nested objects, arrays and "
                "whole-number decimals; 'beta' may change without notice)",
                "check the rule's behaviour on sample messages",
            )
        )
    if rule.get("errorAction"):
        action_types = ", ".join(sorted(rule["errorAction"]))
        issues.append(
            _finding(
                FindingCode.ERROR_ACTION,
                f"error action ({action_types}) has no IoT Hub equivalent: a "
                "failing endpoint is retried and then dropped, and logged in "
                "the routes resource logs",
                "send IoT Hub resource logs to Log Analytics and alert on "
                "routing errors; keep the fallback route enabled",
            )
        )
    return issues


def _select_findings(query: RuleQuery) -> list[Finding]:
    issues: list[Finding] = []
    if not query.selects_whole_message:
        issues.append(
            _finding(
                FindingCode.SELECT_PROJECTION,
                "the SELECT list projects, renames or computes fields; a route "
                "sends the whole message unchanged",
                "do the projection in Azure Stream Analytics or a Function; topic "
                "levels are in the awsTopic* application properties",
            )
        )
    for expr in _walk(*(item.expr for item in query.items)):
        if isinstance(expr, Call) and not has_routing_equivalent(expr.name):
            finding = _finding(*unsupported_function(expr.name))
        elif isinstance(expr, Case | NestedSelect):
            finding = _finding(*construct_findings(expr)[0])
        else:
            continue
        if finding not in issues:
            issues.append(finding)
    return issues


def _topic_calls(query: RuleQuery) -> list[tuple[int, str | None]]:
    """(n, alias) of each SELECT item that is exactly `topic(n)`."""
    calls = []
    for item in query.items:
        expr = item.expr
        if isinstance(expr, Call) and expr.name.lower() == "topic" and len(expr.args) == 1:
            arg = expr.args[0]
            if isinstance(arg, Literal) and type(arg.value) is int and arg.value > 0:
                calls.append((arg.value, item.alias))
    return calls


def _walk(*exprs: Expr) -> Iterator[Expr]:
    for expr in exprs:
        yield expr
        if isinstance(expr, Call):
            yield from _walk(*expr.args)
        elif isinstance(expr, Binary):
            yield from _walk(expr.left, expr.right)
        elif isinstance(expr, Unary | Cast):
            yield from _walk(expr.operand)
        elif isinstance(expr, Access):
            yield from _walk(expr.base)
        elif isinstance(expr, Case):
            parts = [part for branch in expr.branches for part in branch]
            yield from _walk(*parts, *(e for e in (expr.operand, expr.default) if e is not None))
        elif isinstance(expr, NestedSelect):
            yield from _walk(*(item.expr for item in expr.items), expr.source)


def _finding(code: FindingCode, message: str, suggestion: str) -> Finding:
    return Finding(code=code, message=message, suggestion=suggestion)
