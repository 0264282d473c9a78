"""Table tests: real-world AWS IoT topic rule shapes and the IoT Hub routes they become."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.plan.rules import (
    TOPIC_PROPERTY,
    FindingCode,
    RouteSource,
    topic_level_property,
    translate_topic_rule,
    translate_topic_rules,
)

S3 = {"s3": {"bucketName": "telemetry-archive", "key": "${topic()}/${timestamp()}", "roleArn": "r"}}
KINESIS = {"kinesis": {"streamName": "telemetry", "partitionKey": "${newuuid()}", "roleArn": "r"}}
LAMBDA = {"lambda": {"functionArn": "arn:aws:lambda:us-east-1:123456789012:function:alert"}}
SQS = {"sqs": {"queueUrl": "https://sqs.us-east-1.amazonaws.com/123/orders", "roleArn": "r"}}
SNS = {"sns": {"targetArn": "arn:aws:sns:us-east-1:123:alarms", "messageFormat": "RAW"}}
DDB_V2 = {"dynamoDBv2": {"putItem": {"tableName": "readings"}, "roleArn": "r"}}
DDB_V1 = {
    "dynamoDB": {
        "tableName": "wx_data",
        "hashKeyField": "sample_time",
        "hashKeyValue": "${timestamp()}",
        "rangeKeyField": "device_id",
        "rangeKeyValue": "${cast(topic(2) AS DECIMAL)}",
        "roleArn": "r",
    }
}
TIMESTREAM = {
    "timestream": {
        "databaseName": "TimestreamDB",
        "tableName": "wx",
        "dimensions": [{"name": "device_id", "value": "${clientId()}"}],
        "roleArn": "r",
    }
}
REPUBLISH_SHADOW = {"republish": {"topic": "$$aws/things/${topic(2)}/shadow/update", "qos": 1}}
REPUBLISH = {"republish": {"topic": "device/data/alerts", "roleArn": "r"}}
HTTP = {
    "http": {
        "url": "https://ingest.example.com/iot",
        "headers": [{"key": "x-device", "value": "${topic(2)}"}],
    }
}
FIREHOSE = {"firehose": {"deliveryStreamName": "lake", "separator": "\n", "roleArn": "r"}}
KAFKA = {
    "kafka": {
        "destinationArn": "arn:aws:iot:...:ruledestination/vpc/1",
        "topic": "telemetry",
        "clientProperties": {"bootstrap.servers": "b-1:9092"},
    }
}
METRIC = {
    "cloudwatchMetric": {
        "metricNamespace": "Fleet",
        "metricName": "cpu",
        "metricValue": "${cpu}",
        "metricUnit": "Percent",
        "roleArn": "r",
    }
}
LOGS = {"cloudwatchLogs": {"logGroupName": "iot-errors", "roleArn": "r"}}
EVENTS = {"iotEvents": {"inputName": "PressureInput", "roleArn": "r"}}
SITEWISE = {"iotSiteWise": {"putAssetPropertyValueEntries": [], "roleArn": "r"}}
OPENSEARCH = {
    "openSearch": {
        "endpoint": "https://search",
        "index": "iot",
        "type": "_doc",
        "id": "${newuuid()}",
        "roleArn": "r",
    }
}

C = FindingCode
TEMPLATE = {C.SUBSTITUTION_TEMPLATE}
S3_CODES = {C.SUBSTITUTION_TEMPLATE, C.OUTPUT_SHAPE}


def rule(
    sql: str, *actions: dict[str, Any], version: str = "2016-03-23", **extra: Any
) -> dict[str, Any]:
    return {
        "ruleName": "r",
        "sql": sql,
        "awsIotSqlVersion": version,
        "actions": list(actions),
        "ruleDisabled": False,
        **extra,
    }


# (id, rule, expected route condition, expected finding codes of the rule and its endpoints)
CASES: list[tuple[str, dict[str, Any], str | None, set[FindingCode]]] = [
    (
        "wildcard-level-numeric-filter",
        rule("SELECT * FROM 'sensors/+/telemetry' WHERE temperature > 50", LAMBDA),
        (
            "awsTopic1 = 'sensors' AND awsTopic3 = 'telemetry' AND NOT IS_DEFINED(awsTopic4)"
            " AND $body.temperature > 50"
        ),
        {C.NUMERIC_STRING_COERCION},
    ),
    (
        "docs-republish-projection",  # AWS tutorial: republish an MQTT message
        rule("SELECT topic(2) as device_id, temperature FROM 'device/+/data'", REPUBLISH),
        "awsTopic1 = 'device' AND awsTopic3 = 'data' AND NOT IS_DEFINED(awsTopic4)",
        {C.SELECT_PROJECTION, C.REPUBLISH, C.NOT_NATIVE_ENDPOINT},
    ),
    (
        "docs-sns-threshold",  # AWS tutorial: send an Amazon SNS notification
        rule(
            "SELECT device_id, reported_temperature, max_temperature FROM "
            "'device/+/data' WHERE reported_temperature > 30",
            SNS,
        ),
        (
            "awsTopic1 = 'device' AND awsTopic3 = 'data' AND NOT IS_DEFINED(awsTopic4)"
            " AND $body.reported_temperature > 30"
        ),
        {C.SELECT_PROJECTION, C.NUMERIC_STRING_COERCION},
    ),
    (
        "docs-dynamodb-v1-keys",  # AWS tutorial: store device data in a DynamoDB table
        rule(
            "SELECT temperature, humidity, barometer, wind.velocity as wind_velocity, "
            "wind.bearing as wind_bearing FROM 'device/+/data'",
            DDB_V1,
        ),
        "awsTopic1 = 'device' AND awsTopic3 = 'data' AND NOT IS_DEFINED(awsTopic4)",
        {C.SELECT_PROJECTION, C.SUBSTITUTION_TEMPLATE, C.OUTPUT_SHAPE},
    ),
    (
        "dt-projection-timestamp",
        rule(
            "SELECT temperature, humidity, topic(2) AS deviceId, timestamp() AS ts FROM 'dt/+/+'",
            KINESIS,
        ),
        "awsTopic1 = 'dt' AND IS_DEFINED(awsTopic3) AND NOT IS_DEFINED(awsTopic4)",
        {C.SELECT_PROJECTION, C.UNSUPPORTED_FUNCTION, C.SUBSTITUTION_TEMPLATE},
    ),
    (
        "timestream-dimensions",  # AWS tutorial: store device data in Timestream
        rule(
            "SELECT temperature, humidity, barometer, wind.velocity as wind_velocity "
            "FROM 'device/+/data'",
            TIMESTREAM,
        ),
        "awsTopic1 = 'device' AND awsTopic3 = 'data' AND NOT IS_DEFINED(awsTopic4)",
        {C.SELECT_PROJECTION, C.SUBSTITUTION_TEMPLATE, C.NOT_NATIVE_ENDPOINT},
    ),
    (
        "s3-archive-key-template",
        rule("SELECT * FROM 'device/+/data'", S3),
        "awsTopic1 = 'device' AND awsTopic3 = 'data' AND NOT IS_DEFINED(awsTopic4)",
        S3_CODES,
    ),
    (
        "kinesis-uuid-partition",
        rule("SELECT * FROM 'fleet/telemetry'", KINESIS),
        "awsTopic = 'fleet/telemetry'",
        TEMPLATE,
    ),
    (
        "dynamodb-v2-whole-message",
        rule("SELECT * FROM 'plant/+/meter' WHERE kwh >= 0", DDB_V2),
        (
            "awsTopic1 = 'plant' AND awsTopic3 = 'meter' AND NOT IS_DEFINED(awsTopic4)"
            " AND $body.kwh >= 0"
        ),
        {C.NUMERIC_STRING_COERCION, C.OUTPUT_SHAPE},
    ),
    (
        "shadow-reported-projection",
        rule("SELECT state.reported.* FROM '$aws/things/+/shadow/update/accepted'", LAMBDA),
        None,
        {C.SELECT_PROJECTION, C.SHADOW_TOPIC},
    ),
    (
        "shadow-documents",
        rule(
            "SELECT current.state.reported.temp AS temp FROM "
            "'$aws/things/+/shadow/name/config/update/documents'",
            SQS,
        ),
        None,
        {C.SELECT_PROJECTION, C.SHADOW_TOPIC},
    ),
    (
        "presence-connected",
        rule("SELECT * FROM '$aws/events/presence/connected/+'", SQS),
        None,
        {C.PRESENCE_TOPIC},
    ),
    (
        "registry-thing-created",
        rule("SELECT * FROM '$aws/events/thing/+/created'", SNS),
        None,
        {C.LIFECYCLE_TOPIC},
    ),
    (
        "jobs-reserved",
        rule("SELECT * FROM '$aws/things/+/jobs/notify'", SQS),
        None,
        {C.RESERVED_TOPIC},
    ),
    (
        "gateway-prefix-on-topic-level",
        rule("SELECT * FROM 'dt/#' WHERE startswith(topic(2), 'gw-')", KINESIS),
        "(awsTopic = 'dt' OR STARTS_WITH(awsTopic, 'dt/')) AND STARTS_WITH(awsTopic2, 'gw-')",
        TEMPLATE,
    ),
    (
        "republish-to-shadow",
        rule("SELECT state FROM 'cmd/+/desired'", REPUBLISH_SHADOW),
        "awsTopic1 = 'cmd' AND awsTopic3 = 'desired' AND NOT IS_DEFINED(awsTopic4)",
        {C.SELECT_PROJECTION, C.REPUBLISH, C.NOT_NATIVE_ENDPOINT, C.SUBSTITUTION_TEMPLATE},
    ),
    (
        "nested-and-or",
        rule(
            "SELECT * FROM 'iot/+/alerts' WHERE severity >= 3 AND (type = 'fire' OR "
            "type = 'smoke')",
            SNS,
        ),
        (
            "awsTopic1 = 'iot' AND awsTopic3 = 'alerts' AND NOT IS_DEFINED(awsTopic4)"
            " AND $body.severity >= 3 AND ($body.type = 'fire' OR $body.type = 'smoke')"
        ),
        {C.NUMERIC_STRING_COERCION},
    ),
    (
        "missing-calibration",
        rule("SELECT * FROM 'factory/line1/+/vibration' WHERE isUndefined(calibration)", SQS),
        (
            "awsTopic1 = 'factory' AND awsTopic2 = 'line1' AND awsTopic4 = 'vibration'"
            " AND NOT IS_DEFINED(awsTopic5) AND NOT IS_DEFINED($body.calibration)"
        ),
        set(),
    ),
    (
        "lower-status-multilevel",
        rule("SELECT * FROM 'sensors/#' WHERE lower(status) = 'error'", LOGS),
        (
            "(awsTopic = 'sensors' OR STARTS_WITH(awsTopic, 'sensors/'))"
            " AND LOWER($body.status) = 'error'"
        ),
        {C.NOT_NATIVE_ENDPOINT},
    ),
    (
        "cloudwatch-metric",
        rule("SELECT cpu FROM 'sensors/+/cpu' WHERE cpu > 90", METRIC),
        (
            "awsTopic1 = 'sensors' AND awsTopic3 = 'cpu' AND NOT IS_DEFINED(awsTopic4)"
            " AND $body.cpu > 90"
        ),
        {
            C.SELECT_PROJECTION,
            C.NUMERIC_STRING_COERCION,
            C.SUBSTITUTION_TEMPLATE,
            C.NOT_NATIVE_ENDPOINT,
        },
    ),
    (
        "sqs-exact-topic",
        rule("SELECT * FROM 'orders/new'", SQS),
        "awsTopic = 'orders/new'",
        set(),
    ),
    (
        "bare-boolean-negated",
        rule("SELECT * FROM 'alarms/+' WHERE NOT acknowledged", SNS),
        (
            "awsTopic1 = 'alarms' AND IS_DEFINED(awsTopic2) AND NOT IS_DEFINED(awsTopic3)"
            " AND NOT ($body.acknowledged = true)"
        ),
        set(),
    ),
    (
        "topic-level-and-rpm",
        rule("SELECT * FROM 'dt/+/+/telemetry' WHERE topic(3) = 'engine' AND rpm > 3000", FIREHOSE),
        (
            "awsTopic1 = 'dt' AND awsTopic4 = 'telemetry' AND NOT IS_DEFINED(awsTopic5)"
            " AND awsTopic3 = 'engine' AND $body.rpm > 3000"
        ),
        {C.NUMERIC_STRING_COERCION},
    ),
    (
        "star-plus-timestamp",
        rule("SELECT *, timestamp() AS ts, clientid() AS client FROM 'raw/+'", KAFKA),
        "awsTopic1 = 'raw' AND IS_DEFINED(awsTopic2) AND NOT IS_DEFINED(awsTopic3)",
        {C.SELECT_PROJECTION, C.UNSUPPORTED_FUNCTION},
    ),
    (
        "regexp-is-superset",
        rule(
            "SELECT * FROM 'data/+' WHERE regexp_matches(serial, '^AB[0-9]+$') AND ok = true", SQS
        ),
        (
            "awsTopic1 = 'data' AND IS_DEFINED(awsTopic2) AND NOT IS_DEFINED(awsTopic3)"
            " AND $body.ok = true"
        ),
        {C.UNSUPPORTED_FUNCTION, C.SUPERSET_CONDITION},
    ),
    (
        "clientid-is-the-connection-device-id",
        rule("SELECT * FROM 'devices/status' WHERE clientid() = 'dev-001'", SQS),
        "awsTopic = 'devices/status' AND $connectionDeviceId = 'dev-001'",
        {C.CLIENT_ID_ASSUMED},
    ),
    (
        "negated-untranslatable-stays-superset",
        rule("SELECT * FROM 'a/b' WHERE NOT (level = 'debug' OR round(v) = 2)", SQS),
        "awsTopic = 'a/b' AND NOT ($body.level = 'debug')",
        {C.UNSUPPORTED_FUNCTION, C.SUPERSET_CONDITION},
    ),
    (
        "negated-clientid-is-exact",
        rule("SELECT * FROM 'a/b' WHERE NOT (level = 'debug' OR clientid() = 'test')", SQS),
        "awsTopic = 'a/b' AND NOT ($body.level = 'debug' OR $connectionDeviceId = 'test')",
        {C.CLIENT_ID_ASSUMED},
    ),
    (
        "case-in-select",
        rule("SELECT CASE status WHEN 1 THEN 'ok' ELSE 'bad' END AS s FROM 'x/y'", SQS),
        "awsTopic = 'x/y'",
        {C.SELECT_PROJECTION, C.CASE_EXPRESSION},
    ),
    (
        "nested-select",
        rule("SELECT (SELECT v FROM readings WHERE v > 10) AS high FROM 'batch/+'", SQS),
        "awsTopic1 = 'batch' AND IS_DEFINED(awsTopic2) AND NOT IS_DEFINED(awsTopic3)",
        {C.SELECT_PROJECTION, C.NESTED_SELECT},
    ),
    (
        "cast-in-where",
        rule("SELECT * FROM 'a/+' WHERE cast(temp AS Decimal) > 20.5", SQS),
        "awsTopic1 = 'a' AND IS_DEFINED(awsTopic2) AND NOT IS_DEFINED(awsTopic3)",
        {C.CAST, C.SUPERSET_CONDITION},
    ),
    (
        "in-operator",
        rule("SELECT * FROM 'lights/+' WHERE 'red' IN colors", SQS),
        "awsTopic1 = 'lights' AND IS_DEFINED(awsTopic2) AND NOT IS_DEFINED(awsTopic3)",
        {C.IN_OPERATOR, C.SUPERSET_CONDITION},
    ),
    (
        "array-index",
        rule("SELECT * FROM 'batch/readings' WHERE samples[0].value > 1", SQS),
        "awsTopic = 'batch/readings'",
        {C.ARRAY_INDEX, C.SUPERSET_CONDITION},
    ),
    (
        "disabled-with-error-action",
        rule(
            "SELECT * FROM 'legacy/+'",
            S3,
            ruleDisabled=True,
            errorAction={"cloudwatchLogs": {"logGroupName": "rule-errors", "roleArn": "r"}},
        ),
        "awsTopic1 = 'legacy' AND IS_DEFINED(awsTopic2) AND NOT IS_DEFINED(awsTopic3)",
        {C.RULE_DISABLED, C.ERROR_ACTION, *S3_CODES},
    ),
    (
        "http-header-template",
        rule("SELECT * FROM 'webhook/out'", HTTP),
        "awsTopic = 'webhook/out'",
        {C.SUBSTITUTION_TEMPLATE, C.NOT_NATIVE_ENDPOINT},
    ),
    (
        "needs-human-actions",
        rule("SELECT * FROM 'press/+'", EVENTS, SITEWISE, OPENSEARCH),
        "awsTopic1 = 'press' AND IS_DEFINED(awsTopic2) AND NOT IS_DEFINED(awsTopic3)",
        {C.NEEDS_HUMAN, C.SUBSTITUTION_TEMPLATE},
    ),
    (
        "root-multilevel-excludes-reserved",
        rule("SELECT * FROM '#'", KINESIS),
        "NOT STARTS_WITH(awsTopic, '$')",
        TEMPLATE,
    ),
    (
        "leading-single-level",
        rule("SELECT * FROM '+/status'", SQS),
        "NOT STARTS_WITH(awsTopic, '$') AND awsTopic2 = 'status' AND NOT IS_DEFINED(awsTopic3)",
        set(),
    ),
    (
        "plus-then-hash",
        rule("SELECT * FROM 'home/+/#'", SQS),
        "awsTopic1 = 'home' AND IS_DEFINED(awsTopic2)",
        set(),
    ),
    (
        "legacy-sql-version",
        rule("SELECT * FROM 'things/+/temp' WHERE value < -10.5", SQS, version="2015-10-08"),
        (
            "awsTopic1 = 'things' AND awsTopic3 = 'temp' AND NOT IS_DEFINED(awsTopic4)"
            " AND $body.value < -10.5"
        ),
        {C.SQL_VERSION, C.NUMERIC_STRING_COERCION},
    ),
    (
        "beta-sql-version",
        rule("SELECT * FROM 'b/c'", SQS, version="beta"),
        "awsTopic = 'b/c'",
        {C.SQL_VERSION},
    ),
    (
        "substring-of-topic-level",
        rule("SELECT * FROM 'site/+/evt' WHERE substring(topic(2), 0, 3) = 'gw-'", SQS),
        (
            "awsTopic1 = 'site' AND awsTopic3 = 'evt' AND NOT IS_DEFINED(awsTopic4)"
            " AND SUBSTRING(awsTopic2, 0, 3) = 'gw-'"
        ),
        set(),
    ),
    (
        "mod-and-arithmetic",
        rule("SELECT * FROM 'm/x' WHERE mod(seq, 10) = 0 AND (temp_f - 32) * 5 / 9 > 30", SQS),
        "awsTopic = 'm/x' AND $body.seq % 10 = 0 AND ($body.temp_f - 32) * 5 / 9 > 30",
        {C.NUMERIC_STRING_COERCION},
    ),
    (
        "quote-in-literal",
        rule("SELECT * FROM 'q/r' WHERE name = 'O''Brien'", SQS),
        "awsTopic = 'q/r'",
        {C.UNSUPPORTED_LITERAL, C.SUPERSET_CONDITION},
    ),
    (
        "topic-level-compared-with-number",
        rule("SELECT * FROM 'floor/+/room' WHERE topic(2) = 3", SQS),
        (
            "awsTopic1 = 'floor' AND awsTopic3 = 'room' AND NOT IS_DEFINED(awsTopic4)"
            " AND awsTopic2 = 3"
        ),
        {C.NUMERIC_STRING_COERCION},
    ),
    (
        "binary-payload-base64",  # AWS docs: binary payloads
        rule("SELECT encode(*, 'base64') AS data, timestamp() AS ts FROM 'bin/+'", KINESIS),
        "awsTopic1 = 'bin' AND IS_DEFINED(awsTopic2) AND NOT IS_DEFINED(awsTopic3)",
        {C.SELECT_PROJECTION, C.UNSUPPORTED_FUNCTION, C.SUBSTITUTION_TEMPLATE},
    ),
    (
        "malformed-sql",
        rule("SELECT * FROM 'a/b' WHERE temp >", SQS),
        None,
        {C.SQL_ERROR},
    ),
]


@pytest.mark.parametrize(
    ("rule_dict", "condition", "codes"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_rule_translation(
    rule_dict: dict[str, Any], condition: str | None, codes: set[str]
) -> None:
    translation = translate_topic_rule(rule_dict)
    assert translation.route_condition == condition
    assert translation.finding_codes == codes


def test_at_least_thirty_real_world_shapes() -> None:
    assert len(CASES) >= 30


def test_disabled_rule_is_reported_disabled() -> None:
    translation = translate_topic_rule(rule("SELECT * FROM 'a'", SQS, ruleDisabled=True))
    assert translation.enabled is False


@pytest.mark.parametrize(
    ("action", "kind", "native"),
    [
        (S3, "storage_container", True),
        (KINESIS, "event_hubs", True),
        (FIREHOSE, "event_hubs", True),
        (LAMBDA, "event_hubs", True),
        (KAFKA, "event_hubs", True),
        (SQS, "service_bus_queue", True),
        (SNS, "service_bus_topic", True),
        (DDB_V1, "cosmos_db", True),
        (DDB_V2, "cosmos_db", True),
        (TIMESTREAM, "azure_data_explorer", False),
        (REPUBLISH, "azure_function", False),
        (HTTP, "event_grid", False),
        (METRIC, "azure_monitor", False),
        (LOGS, "azure_monitor", False),
        (EVENTS, "human", False),
    ],
)
def test_endpoint_kinds(action: dict[str, Any], kind: str, native: bool) -> None:
    (endpoint,) = translate_topic_rule(rule("SELECT * FROM 'a/b'", action)).endpoints
    assert (endpoint.kind, endpoint.native) == (kind, native)


def test_endpoint_details_carry_key_settings_but_not_roles() -> None:
    (endpoint,) = translate_topic_rule(rule("SELECT * FROM 'a/b'", S3)).endpoints
    assert endpoint.details["bucketName"] == "telemetry-archive"
    assert endpoint.details["key"] == "${topic()}/${timestamp()}"
    assert "roleArn" not in endpoint.details


def test_templates_are_listed_one_finding_each() -> None:
    (endpoint,) = translate_topic_rule(rule("SELECT * FROM 'a/b'", S3)).endpoints
    messages = [f.message for f in endpoint.issues if f.code == C.SUBSTITUTION_TEMPLATE]
    assert len(messages) == 2
    assert any("${topic()}" in message for message in messages)


def test_republish_unescapes_dollar_topic() -> None:
    (endpoint,) = translate_topic_rule(rule("SELECT * FROM 'a/b'", REPUBLISH_SHADOW)).endpoints
    (finding,) = [f for f in endpoint.issues if f.code == C.REPUBLISH]
    assert "'$aws/things/${topic(2)}/shadow/update'" in finding.message
    assert "twin" in finding.suggestion


def test_reserved_topics_name_their_azure_source() -> None:
    shadow = translate_topic_rule(rule("SELECT * FROM '$aws/things/+/shadow/update'", SQS))
    presence = translate_topic_rule(rule("SELECT * FROM '$aws/events/presence/+/+'", SQS))
    telemetry = translate_topic_rule(rule("SELECT * FROM 'a/b'", SQS))
    assert shadow.source == RouteSource.TWIN_CHANGE_EVENTS
    assert presence.source == RouteSource.DEVICE_CONNECTION_STATE_EVENTS
    assert telemetry.source == RouteSource.DEVICE_MESSAGES


def test_translation_is_frozen_and_serializable() -> None:
    translation = translate_topic_rule(rule("SELECT * FROM 'a/b'", S3))
    with pytest.raises(Exception, match="frozen"):
        translation.rule_name = "other"  # type: ignore[misc]
    dumped = translation.model_dump(mode="json")
    assert dumped["endpoints"][0]["kind"] == "storage_container"


def test_missing_sql_version_means_2015() -> None:
    translation = translate_topic_rule({"ruleName": "r", "sql": "SELECT * FROM 'a'", "actions": []})
    assert translation.finding_codes == {C.SQL_VERSION}


def test_relay_property_names_are_the_published_contract() -> None:
    # The relay stamps these names on every message; changing them breaks deployed routes.
    assert TOPIC_PROPERTY == "awsTopic"
    assert [topic_level_property(n) for n in (1, 2, 10)] == ["awsTopic1", "awsTopic2", "awsTopic10"]


def test_batch_keeps_order_and_topic_filters() -> None:
    rules = [rule("SELECT * FROM 'a/+'", SQS), rule("SELEC * FROM 'b'", SQS)]
    first, second = translate_topic_rules(rules)
    assert first.topic_filter == "a/+"
    assert second.topic_filter is None
    assert second.route_condition is None
    (finding,) = second.issues
    assert "line 1, column 1" in finding.message
