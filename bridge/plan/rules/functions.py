"""AWS IoT SQL functions: their routing query equivalents, or why there is none."""

from __future__ import annotations

from collections.abc import Callable

from bridge.mapping.topics import TOPIC_PROPERTY, topic_level_property
from bridge.plan.rules.routing import Arith, Const, Func, Prop, RouteExpr, negate

__all__ = ["CONNECTION_DEVICE_ID", "NO_EQUIVALENT", "has_routing_equivalent", "translate_call"]

# The system property routing sees the connecting device's id in. In this migration the AWS
# client id is the thing name and the device id is the thing name, and relayed messages are
# sent by the module `aws-bridge` of that device, whose connection device id is the device's.
CONNECTION_DEVICE_ID = "$connectionDeviceId"

# AWS name (lower case) -> routing function name, for functions that behave the same.
_SAME_MEANING = {
    "startswith": "STARTS_WITH",
    "endswith": "ENDS_WITH",
    "lower": "LOWER",
    "upper": "UPPER",
    "concat": "CONCAT",
    "length": "LENGTH",
    "indexof": "INDEX_OF",
    "abs": "ABS",
    "ceil": "CEILING",
    "floor": "FLOOR",
    "sqrt": "SQRT",
    "power": "POWER",
    "exp": "EXP",
    "sign": "SIGN",
}
_ARITY = {"startswith": 2, "endswith": 2, "indexof": 2, "power": 2}

_NO_REGEX = "STARTS_WITH, ENDS_WITH or CONTAINS where the pattern allows, else a Function"
_TIME = "iothub-enqueuedtime (system property) tells consumers when IoT Hub received the message"
# AWS name (lower case) -> (why it has no routing equivalent, what to do instead).
NO_EQUIVALENT: dict[str, tuple[str, str]] = {
    "round": (
        "routing queries have no ROUND (IoT Hub documents ABS, CEILING, FLOOR, SIGN, ...)",
        "compare with FLOOR/CEILING bounds, or round in the consumer",
    ),
    "timestamp": ("routing queries have no clock", _TIME),
    "parse_time": ("routing queries have no clock or date formatting", _TIME),
    "traceid": ("IoT Hub has no MQTT trace id", "use the message id or a correlation id"),
    "principal": ("the authenticating certificate is not visible to routing", "none"),
    "newuuid": ("routing cannot generate values", "generate ids in the consumer"),
    "get_thing_shadow": (
        "routing cannot read another document",
        "route on twin tags/properties ($twin.*) or join in a Function",
    ),
    "aws_lambda": ("routing cannot call out", "call the logic from an Azure Function consumer"),
    "machinelearning_predict": ("routing cannot call out", "Azure ML from Stream Analytics"),
    "get_secret": ("routing cannot read secrets", "Key Vault from a Function"),
    "get_dynamodb": ("routing cannot read tables", "a Function with a Cosmos DB input binding"),
    "decode": ("routing cannot decode payloads", "send JSON, or decode in a Function"),
    "encode": ("routing cannot encode payloads", "encode in a Function"),
    "regexp_matches": ("routing queries have no regular expressions", _NO_REGEX),
    "regexp_replace": ("routing queries have no regular expressions", _NO_REGEX),
    "regexp_substr": ("routing queries have no regular expressions", _NO_REGEX),
    "get": ("routing queries cannot index arrays", "filter in Stream Analytics or a Function"),
}


def _topic(args: tuple[RouteExpr, ...]) -> RouteExpr | None:
    if not args:
        return Prop(TOPIC_PROPERTY)
    level = args[0]
    if len(args) == 1 and isinstance(level, Const) and type(level.value) is int and level.value > 0:
        return Prop(topic_level_property(level.value))
    return None


def _substring(args: tuple[RouteExpr, ...]) -> RouteExpr | None:
    # AWS substring(s, start[, end]) is 0-based with an exclusive end; SUBSTRING takes a length.
    if len(args) not in {2, 3} or not all(_natural(arg) for arg in args[1:]):
        return None
    text, start = args[0], args[1]
    assert isinstance(start, Const)
    assert isinstance(start.value, int)
    if len(args) == 2:
        length: RouteExpr = Arith("-", Func("LENGTH", (text,)), start)
    else:
        end = args[2]
        assert isinstance(end, Const)
        assert isinstance(end.value, int)
        if end.value < start.value:
            return None
        length = Const(end.value - start.value)
    return Func("SUBSTRING", (text, start, length))


def _natural(expr: RouteExpr) -> bool:
    return isinstance(expr, Const) and type(expr.value) is int and expr.value >= 0


_SPECIAL: dict[str, Callable[[tuple[RouteExpr, ...]], RouteExpr | None]] = {
    "topic": _topic,
    "substring": _substring,
    "mod": lambda args: Arith("%", args[0], args[1]) if len(args) == 2 else None,
    "isundefined": lambda args: negate(Func("IS_DEFINED", args)) if len(args) == 1 else None,
    "isnull": lambda args: Func("IS_NULL", args) if len(args) == 1 else None,
    "clientid": lambda args: None if args else Prop(CONNECTION_DEVICE_ID),
}


def translate_call(name: str, args: tuple[RouteExpr, ...]) -> RouteExpr | None:
    """The routing expression for an AWS function call, or None when there is no equivalent."""
    key = name.lower()
    if key in _SPECIAL:
        return _SPECIAL[key](args)
    if key in _SAME_MEANING and len(args) == _ARITY.get(key, len(args)) and args:
        return Func(_SAME_MEANING[key], args)
    return None


def has_routing_equivalent(name: str) -> bool:
    """Whether calls to this AWS function can be written in a routing query at all."""
    return name.lower() in _SPECIAL or name.lower() in _SAME_MEANING
