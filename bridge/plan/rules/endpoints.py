"""AWS rule actions mapped to Azure endpoints, with what each mapping loses."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bridge.plan.rules.models import EndpointSuggestion, Finding, FindingCode

__all__ = ["suggest_endpoint", "template_findings"]

_TEMPLATE = re.compile(r"\$\{([^}]*)\}")


@dataclass(frozen=True, slots=True)
class _Target:
    kind: str
    native: bool
    keys: tuple[str, ...]
    note: str = ""


_EVENT_HUBS_NOTE = "route to an Event Hubs endpoint"
# AWS action type -> Azure target. `keys` are the action settings worth carrying to the plan.
_TARGETS: dict[str, _Target] = {
    "s3": _Target("storage_container", True, ("bucketName", "key", "cannedAcl")),
    "kinesis": _Target("event_hubs", True, ("streamName", "partitionKey"), _EVENT_HUBS_NOTE),
    "firehose": _Target(
        "event_hubs",
        True,
        ("deliveryStreamName", "separator", "batchMode"),
        "Event Hubs endpoint with Capture to storage replaces the delivery stream",
    ),
    "lambda": _Target(
        "event_hubs",
        True,
        ("functionArn",),
        "Event Hubs endpoint read by an Azure Function (Event Hubs trigger) "
        "running the Lambda's logic",
    ),
    "kafka": _Target(
        "event_hubs",
        True,
        ("destinationArn", "topic", "key", "partition"),
        "Event Hubs endpoint; Kafka consumers read it through the Kafka-compatible endpoint",
    ),
    "sqs": _Target("service_bus_queue", True, ("queueUrl", "useBase64")),
    "sns": _Target("service_bus_topic", True, ("targetArn", "messageFormat")),
    "dynamoDB": _Target(
        "cosmos_db",
        True,
        (
            "tableName",
            "hashKeyField",
            "hashKeyValue",
            "rangeKeyField",
            "rangeKeyValue",
            "payloadField",
        ),
        "Cosmos DB container endpoint (native routing endpoint type)",
    ),
    "dynamoDBv2": _Target("cosmos_db", True, ("putItem",), "Cosmos DB container endpoint"),
    "timestream": _Target(
        "azure_data_explorer",
        False,
        ("databaseName", "tableName", "dimensions", "timestamp"),
        "Event Hubs endpoint ingested by an Azure Data Explorer data connection: ADX is Azure's "
        "managed time-series analytics store and ingests from Event Hubs without code",
    ),
    "republish": _Target(
        "azure_function",
        False,
        ("topic", "qos"),
        "no route can publish to devices: an Azure Function must do it",
    ),
    "http": _Target(
        "event_grid",
        False,
        ("url", "confirmationUrl", "headers"),
        "IoT Hub's Event Grid integration (DeviceTelemetry) with a webhook "
        "subscription, or a Function reading an Event Hubs endpoint",
    ),
    "cloudwatchMetric": _Target(
        "azure_monitor",
        False,
        ("metricNamespace", "metricName", "metricValue", "metricUnit"),
        "Azure Monitor custom metrics written by a Function",
    ),
    "cloudwatchLogs": _Target(
        "azure_monitor",
        False,
        ("logGroupName",),
        "Log Analytics via the Logs Ingestion API from a Function",
    ),
    "cloudwatchAlarm": _Target(
        "azure_monitor",
        False,
        ("alarmName", "stateValue"),
        "Azure Monitor alert rules; state changes need a human design",
    ),
}

_NEEDS_HUMAN: dict[str, str] = {
    "iotAnalytics": "AWS IoT Analytics is retired; choose ADX or Fabric pipelines",
    "iotEvents": "detector models have no Azure counterpart; rebuild in Stream Analytics",
    "iotSiteWise": "asset models map to Azure Digital Twins or ADX only by design work",
    "elasticsearch": "needs an indexer (Azure AI Search or Elastic on Azure) fed by a Function",
    "openSearch": "needs an indexer (Azure AI Search or Elastic on Azure) fed by a Function",
    "stepFunctions": "workflows become Durable Functions or Logic Apps by hand",
    "location": "Amazon Location trackers map to Azure Maps only by design work",
    "salesforce": "needs a Logic App connector designed by a human",
}


def suggest_endpoint(action_type: str, settings: Mapping[str, Any]) -> EndpointSuggestion:
    """The Azure endpoint suggested for one action, with its settings and issues."""
    details = {key: _text(settings[key]) for key in sorted(settings) if _is_key(action_type, key)}
    issues = template_findings(action_type, settings)
    target = _TARGETS.get(action_type)
    if target is None:
        reason = _NEEDS_HUMAN.get(action_type, "no known Azure counterpart")
        issues.insert(
            0,
            _finding(
                FindingCode.NEEDS_HUMAN,
                f"{action_type}: {reason}",
                "design the replacement by hand",
            ),
        )
        return EndpointSuggestion(
            action_type=action_type,
            kind="human",
            native=False,
            details=details,
            issues=tuple(issues),
        )
    if target.note:
        details["azure"] = target.note
    issues.extend(_action_issues(action_type, settings, target))
    return EndpointSuggestion(
        action_type=action_type,
        kind=target.kind,
        native=target.native,
        details=details,
        issues=tuple(issues),
    )


def template_findings(action_type: str, settings: Mapping[str, Any]) -> list[Finding]:
    """One finding per distinct `${...}` substitution template in the action's settings."""
    templates = sorted({match for text in _strings(settings) for match in _TEMPLATE.findall(text)})
    return [
        _finding(
            FindingCode.SUBSTITUTION_TEMPLATE,
            f"{action_type}: substitution template ${{{template}}} is evaluated per message by "
            "AWS; IoT Hub endpoints take fixed settings",
            "derive the value in a Function; topic levels are in the awsTopic* properties",
        )
        for template in templates
    ]


def _action_issues(action_type: str, settings: Mapping[str, Any], target: _Target) -> list[Finding]:
    issues: list[Finding] = []
    if not target.native:
        issues.append(
            _finding(
                FindingCode.NOT_NATIVE_ENDPOINT,
                f"{action_type}: {target.kind} is not an IoT Hub routing endpoint",
                target.note,
            )
        )
    if action_type == "s3":
        issues.append(
            _finding(
                FindingCode.OUTPUT_SHAPE,
                "s3 writes one object per message at its key; the storage endpoint "
                "batches messages into blobs named by time and partition",
                "set the endpoint's file name format and batch size, or use a "
                "Function to write one blob per message",
            )
        )
    if action_type in {"dynamoDB", "dynamoDBv2"}:
        issues.append(
            _finding(
                FindingCode.OUTPUT_SHAPE,
                f"{action_type} writes key columns from the rule; the Cosmos DB "
                "endpoint writes the whole message as a document with a synthetic "
                "partition key",
                "configure the partition key template, or use Stream Analytics "
                "or a Function to shape the items",
            )
        )
    if action_type == "republish":
        issues.append(_republish_finding(str(settings.get("topic", ""))))
    return issues


def _republish_finding(topic: str) -> Finding:
    # '$$' is AWS's escape for a literal '$' in republish topics ('$$aws/things/...').
    unescaped = topic.replace("$$", "$")
    if unescaped.startswith("$aws/things/") and "/shadow/" in unescaped:
        suggestion = "update the device twin (desired properties) from a Function"
    else:
        suggestion = (
            "send cloud-to-device messages from a Function, or keep the AWS rule while dual-homed"
        )
    return _finding(
        FindingCode.REPUBLISH, f"republish to {unescaped!r} has no IoT Hub route", suggestion
    )


def _finding(code: FindingCode, message: str, suggestion: str) -> Finding:
    return Finding(code=code, message=message, suggestion=suggestion)


def _is_key(action_type: str, key: str) -> bool:
    target = _TARGETS.get(action_type)
    return key != "roleArn" if target is None else key in target.keys


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [text for item in value.values() for text in _strings(item)]
    if isinstance(value, list | tuple):
        return [text for item in value for text in _strings(item)]
    return []


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)
