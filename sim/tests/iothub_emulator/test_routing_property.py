"""Property: for generated rules, topics and payloads, the emulator routes what AWS selects.

Each example goes the whole way but the network: the planner translates an AWS rule, the
emulator parses the route condition as IoT Hub would when saving it (it must accept every
condition the planner writes), and evaluates it on the message the relay builds
(`build_message`, sent as the device's `aws-bridge` module); AWS's verdict comes from
`bridge_sim.aws_rules`. A route the planner marks a superset may take more, never less.
Payload fields have one JSON type each, so AWS's string-to-number coercion never applies.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from bridge.plan.rules import FindingCode, translate_topic_rule
from bridge.relay.message import build_message
from bridge_sim.aws_rules import AwsRule
from bridge_sim.iothub.eventhub.log import EventLog
from bridge_sim.iothub.registry import Registry
from bridge_sim.iothub.routing import RoutingConfig
from bridge_sim.iothub.routing.router import MessageRouter
from bridge_sim.iothub.routing.values import RoutedMessage

LEVELS = ["dt", "gw-7", "dev-2", "engine", ""]
CLIENTS = ["gw-7", "dev-2"]


@st.composite
def topic_filters(draw: st.DrawFn) -> str:
    levels = draw(st.lists(st.sampled_from([*LEVELS[:4], "+"]), min_size=0, max_size=3))
    if draw(st.booleans()) or not levels:
        levels.append("#")
    return "/".join(levels)


@st.composite
def filter_and_topic(draw: st.DrawFn) -> tuple[str, str]:
    """A filter and a topic built to match it half of the time."""
    topic_filter = draw(topic_filters())
    if draw(st.booleans()):
        levels = draw(st.lists(st.sampled_from(LEVELS), min_size=1, max_size=4))
        return topic_filter, "/".join(levels)
    levels = []
    for level in topic_filter.split("/"):
        if level == "#":
            levels.extend(draw(st.lists(st.sampled_from(LEVELS), max_size=2)))
        else:
            levels.append(draw(st.sampled_from(LEVELS)) if level == "+" else level)
    return topic_filter, "/".join(levels) or "dt"


small = st.integers(-3, 3)
atoms = st.one_of(
    st.builds("t {} {}".format, st.sampled_from(["=", "<>", "<", "<=", ">", ">="]), small),
    st.builds("a.b > {}".format, small),
    st.builds("a.b.c = {}".format, small),  # a.b is a number: a.b.c is undefined
    st.builds("t + h * 2 >= {}".format, small),
    st.builds("abs(t) > {}".format, st.integers(0, 3)),
    st.builds("mod(t, 2) = {}".format, st.integers(-1, 1)),
    st.builds("s = '{}'".format, st.sampled_from(["gw-7", "X", "x"])),
    st.builds("lower(s) = '{}'".format, st.sampled_from(["x", "gw-7"])),
    st.builds("startswith(s, '{}')".format, st.sampled_from(["gw", "x", ""])),
    st.builds("endswith(s, '{}')".format, st.sampled_from(["7", "X"])),
    st.builds("topic({}) = '{}'".format, st.integers(1, 4), st.sampled_from(LEVELS)),
    st.builds("startswith(topic({}), 'gw')".format, st.integers(1, 3)),
    st.builds("clientid() = '{}'".format, st.sampled_from(CLIENTS)),
    st.just("isUndefined(m)"),
    st.just("flag"),
    st.just("s"),  # a string is not true
)
wheres = st.recursive(
    atoms,
    lambda inner: st.one_of(
        st.builds("({}) AND ({})".format, inner, inner),
        st.builds("({}) OR ({})".format, inner, inner),
        st.builds("NOT ({})".format, inner),
    ),
    max_leaves=5,
)
payloads = st.one_of(
    st.fixed_dictionaries(
        {
            "t": small,
            "h": small,
            "s": st.sampled_from(["gw-7", "X", "x"]),
            "flag": st.booleans(),
        },
        optional={"m": small, "a": st.fixed_dictionaries({"b": small})},
    ).map(lambda body: json.dumps(body).encode()),
    st.just(b"not json"),
)


def route_takes(condition: str, topic: str, payload: bytes, client_id: str) -> bool:
    """Whether the emulator's routing sends the relayed message along the route."""
    router = MessageRouter(events=EventLog(), registry=Registry("myhub"), entities={})
    router.config = RoutingConfig.from_tfvars(
        {
            "endpoints": [{"name": "eh-rule", "type": "EventHub", "target": "rule"}],
            "routes": [
                {
                    "name": "rule",
                    "source": "DeviceMessages",
                    "condition": condition,
                    "endpoint_names": ["eh-rule"],
                    "enabled": True,
                }
            ],
        },
        fallback=False,
    )
    relayed = build_message(client_id, topic, payload, 0.0)
    message = RoutedMessage(
        body=relayed.body,
        device_id=client_id,
        module_id="aws-bridge",
        properties=relayed.properties,
        content_type=relayed.content_type,
        content_encoding=relayed.content_encoding,
        message_id=relayed.message_id,
    )
    return router.endpoints_for(message) == ["eh-rule"]


@example(("dt/+", "dt/gw-7"), "NOT (clientid() = 'dev-2')", b'{"t": 0}', "gw-7")
@example(("dt/#", "dt"), "NOT (t > 0)", b"not json", "gw-7")
@example(("+/#", "$aws/x"), None, b"{}", "gw-7")
@settings(max_examples=400, deadline=None, database=None)
@given(
    filter_and_topic=filter_and_topic(),
    where=st.none() | wheres,
    payload=payloads,
    client_id=st.sampled_from(CLIENTS),
)
def test_the_emulator_routes_what_the_aws_rule_selects(
    filter_and_topic: tuple[str, str], where: str | None, payload: bytes, client_id: str
) -> None:
    topic_filter, topic = filter_and_topic
    clause = f" WHERE {where}" if where else ""
    sql = f"SELECT * FROM '{topic_filter}'{clause}"  # noqa: S608 - AWS rule text, never executed
    translation = translate_topic_rule(
        {"ruleName": "p", "sql": sql, "awsIotSqlVersion": "2016-03-23", "actions": []}
    )
    assert translation.route_condition is not None, translation.issues
    aws = AwsRule("p", sql).selects(topic, payload, client_id)
    routed = route_takes(translation.route_condition, topic, payload, client_id)
    condition: Any = translation.route_condition
    if FindingCode.SUPERSET_CONDITION in translation.finding_codes:
        assert routed or not aws, condition
    else:
        assert routed == aws, condition
