"""Route conditions as IoT Hub parses and evaluates them (Microsoft's routing query syntax).

Examples come from Microsoft's "IoT Hub message routing query syntax" page and the
expressions section of the IoT Hub query language.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from bridge_sim.iothub.routing import RouteQueryError, parse_condition
from bridge_sim.iothub.routing.evaluate import evaluate, matches
from bridge_sim.iothub.routing.values import UNDEFINED, RoutedMessage

WEATHER = {
    "Weather": {
        "Temperature": 50,
        "Time": "2017-03-09T00:00:00.000Z",
        "PrevTemperatures": [20, 30, 40],
        "IsEnabled": True,
        "Location": {"Street": "One Microsoft Way", "City": "Redmond", "State": "WA"},
        "HistoricalData": [
            {"Month": "Feb", "Temperature": 40},
            {"Month": "Jan", "Temperature": 30},
        ],
    }
}
DEVICE_TWIN = {
    "tags": {"deploymentLocation": {"building": "43", "floor": 1}},
    "properties": {"desired": {"telemetryConfig": {"sendFrequency": "5m"}}, "reported": {}},
}
MODULE_TWIN = {"tags": {}, "properties": {"desired": {}, "reported": {"batteryLevel": 55}}}


def message(
    body: Any = WEATHER,
    *,
    content_type: str | None = "application/json",
    content_encoding: str | None = "utf-8",
    module_id: str | None = None,
    **properties: str,
) -> RoutedMessage:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return RoutedMessage(
        body=raw,
        device_id="dev-1",
        module_id=module_id,
        properties={"processingPath": "hot", "awsTopic": "dt/dev-1/x", **properties},
        content_type=content_type,
        content_encoding=content_encoding,
        message_id="m-1",
        enqueued_time_ms=1_700_000_000_123,
        twin=lambda: MODULE_TWIN if module_id else DEVICE_TWIN,
    )


def value(condition: str, msg: RoutedMessage | None = None) -> Any:
    return evaluate(parse_condition(condition), msg or message())


@pytest.mark.parametrize(
    "condition",
    [
        "true",
        "$contentEncoding = 'utf-8' AND processingPath = 'hot'",
        "$body.Weather.HistoricalData[0].Month = 'Feb'",
        "$body.Weather.Temperature = 50 AND $body.Weather.IsEnabled",
        "length($body.Weather.Location.State) = 2",
        "$body.Weather.Temperature = 50 AND processingPath = 'hot'",
        "$twin.properties.desired.telemetryConfig.sendFrequency = '5m'",
        (
            "$body.Weather.Temperature = 50"
            " AND $twin.properties.desired.telemetryConfig.sendFrequency = '5m'"
        ),
        "$twin.tags.deploymentLocation.floor = 1",
        "$connectionDeviceId = 'dev-1' AND NOT IS_DEFINED($connectionModuleId)",
        "$contentType = 'application/json' and $messageId = 'm-1'",
        "$enqueuedTime = '2023-11-14T22:13:20.1230000Z'",
        "PROCESSINGPATH = 'hot'",  # property names are not case-sensitive
        "STARTS_WITH(awsTopic, 'dt/') AND ENDS_WITH(awsTopic, '/x') AND CONTAINS(awsTopic, 'dev')",
        "INDEX_OF(awsTopic, 'dev') = 3 AND SUBSTRING(awsTopic, 3, 5) = 'dev-1'",
        "SUBSTRING(awsTopic, 9) = 'x' AND UPPER(processingPath) = 'HOT'",
        "CONCAT(awsTopic, '/', processingPath) = 'dt/dev-1/x/hot' AND LOWER('AbC') = 'abc'",
        "ABS(-3) = 3 AND EXP(0) = 1 AND POWER(2, 10) = 1024 AND SQUARE(3) = 9",
        "CEILING(1.2) = 2 AND FLOOR(-1.2) = -2 AND SIGN(-4) = -1 AND SQRT(16) = 4",
        "AS_NUMBER('12.5') = 12.5 AND IS_NUMBER(AS_NUMBER('7')) AND NOT IS_DEFINED(AS_NUMBER('x'))",
        "IS_ARRAY($body.Weather.PrevTemperatures) AND IS_OBJECT($body.Weather.Location)",
        "IS_BOOL($body.Weather.IsEnabled) AND IS_STRING($body.Weather.Time) AND IS_NULL(null)",
        "IS_PRIMITIVE($body.Weather.Temperature) AND NOT IS_PRIMITIVE($body.Weather.Location)",
        "($body.Weather.Temperature - 10) * 2 / 4 = 20 AND -7 % 3 = -1 AND 0x1F = 31",
        "'it\\'s' <> 'x' AND \"a\\\"b\" = 'a\"b'",
        "'\\u0041' = 'A' AND 'b' > 'a' AND true <> false AND null = null",
    ],
)
def test_documented_and_supported_conditions_are_true(condition):
    assert value(condition) is True, condition


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("missing = 'x'", UNDEFINED),
        ("NOT (missing = 'x')", UNDEFINED),  # NOT undefined is undefined: not routed either
        ("missing = 'x' OR true", True),
        ("missing = 'x' AND false", False),
        ("IS_DEFINED(missing)", False),
        ("$body.Weather.Temperature = '50'", UNDEFINED),  # no string-to-number coercion
        ("$body.Weather.Temperature > 'a'", UNDEFINED),
        ("LOWER($body.Weather.Temperature)", UNDEFINED),
        ("ABS('3')", UNDEFINED),
        ("1 / 0", UNDEFINED),
        ("$body.Weather = 1", UNDEFINED),
        ("$body.Weather.PrevTemperatures[7] = 1", UNDEFINED),
        ("$body = 'x'", UNDEFINED),  # the whole body cannot be queried
        ("processingPath", "hot"),
        ("processingPath AND true", UNDEFINED),
        ("undefined", UNDEFINED),
    ],
)
def test_undefined_propagates_as_documented(condition, expected):
    assert value(condition) == expected
    assert not matches(parse_condition(condition), message()) or expected is True


@pytest.mark.parametrize(
    ("content_type", "content_encoding", "body", "readable"),
    [
        ("application/json", "utf-8", json.dumps(WEATHER).encode(), True),
        ("application/JSON", "UTF-8", json.dumps(WEATHER).encode(), True),
        ("application/json", "utf-16", json.dumps(WEATHER).encode("utf-16"), True),
        ("application/json", None, json.dumps(WEATHER).encode(), False),
        (None, "utf-8", json.dumps(WEATHER).encode(), False),
        ("text/plain", "utf-8", json.dumps(WEATHER).encode(), False),
        ("application/json", "utf-8", b"{not json", False),
    ],
)
def test_the_body_is_queried_only_as_json_in_a_utf_encoding(
    content_type, content_encoding, body, readable
):
    msg = message(body, content_type=content_type, content_encoding=content_encoding)
    assert matches(parse_condition("$body.Weather.Temperature = 50"), msg) is readable
    # Unreadable, the body is undefined: its negation routes nothing either.
    assert matches(parse_condition("NOT ($body.Weather.Temperature = 50)"), msg) is False


def test_a_module_message_queries_the_module_twin_not_the_device_twin():
    # "Twin queries for messages originating from device modules query against the module
    # twin and not the corresponding device twin" (routing query syntax, note).
    from_module = message(module_id="aws-bridge")
    assert value("$twin.tags.deploymentLocation.floor = 1", from_module) is UNDEFINED
    assert value("$twin.properties.reported.batteryLevel = 55", from_module) is True
    assert value("$twin.tags.deploymentLocation.floor = 1") is True


@pytest.mark.parametrize(
    ("condition", "reason"),
    [
        ("", "empty"),
        ("ROUND($body.x) = 1", "unknown function 'ROUND'"),
        ("REGEX(a, 'x')", "unknown function"),
        ("LOWER(a, b) = 'x'", "LOWER takes 1 arguments, not 2"),
        ("SUBSTRING(a) = 'x'", "SUBSTRING takes 2 to 3 arguments"),
        ("a = ", "expected a value at position 4"),
        ("a = 1 = 2", "comparisons do not chain"),
        ("(a = 1", "expected ')'"),
        ("a IN ['x']", "expected an operator or the end"),
        ("a.b = 1", "has no members"),
        ("$body.a[x] = 1", "expected an array index"),
        ("a = 'x\\q'", "unsupported escape"),
        ("a = 'open", "unexpected character"),
        ("a # b", "unexpected character '#'"),
        ("NOT " * 70 + "true", "nests deeper than 64"),
    ],
)
def test_conditions_iot_hub_would_not_save_are_refused_with_the_reason(condition, reason):
    with pytest.raises(RouteQueryError, match=None) as error:
        parse_condition(condition)
    assert reason in str(error.value)
