"""The code injected into patched programs stamps exactly the relay's topic properties."""

from __future__ import annotations

import importlib
from urllib.parse import unquote

from hypothesis import given
from hypothesis import strategies as st

from bridge.mapping.topics import topic_properties
from firmware_patches._runtime import mqtt_router

# MQTT topic levels: any text but '/', wildcards and NUL; empty levels allowed.
levels = st.text(
    alphabet=st.characters(blacklist_characters="/+#\x00", blacklist_categories=("Cs",)),
    max_size=8,
)
topics = (
    st.lists(levels, min_size=1, max_size=6).map("/".join).filter(lambda t: not t.startswith("$"))
)


def _bag(topic: str) -> dict[str, str]:
    bag = topic.split("/messages/events/", 1)[1]
    return {unquote(k): unquote(v) for k, v in (pair.split("=", 1) for pair in bag.split("&"))}


@given(topic=topics)
def test_mqtt_router_bag_matches_the_relay(topic):
    mqtt_router.iothub_device("dev-1")
    hub_topic, payload = mqtt_router.iothub_publish(topic, b'{"t": 1}')
    assert hub_topic.startswith("devices/dev-1/messages/events/")
    assert payload == b'{"t": 1}'
    assert _bag(hub_topic) == {
        "$.ct": "application/json",
        "$.ce": "utf-8",
        **topic_properties(topic),
    }


@given(topic=topics)
def test_sdk_adapters_stamp_the_relay_properties(topic):
    for name in ("awsiotsdk_adapter", "awsiotpythonsdk_adapter"):
        adapter = importlib.import_module(f"firmware_patches._runtime.{name}")
        assert adapter.iothub_topic_properties(topic) == topic_properties(topic)


def test_router_unquote_reverses_quote():
    text = "cmd/ü x/%41&="
    assert mqtt_router._iothub_unquote(mqtt_router._iothub_quote(text)) == text
