"""The MQTT codec and IoT Hub topic rules, without a network."""

from __future__ import annotations

import pytest

from bridge_sim.iothub.mqtt import codec
from bridge_sim.iothub.mqtt.dispatch import telemetry_fields
from bridge_sim.iothub.mqtt.topics import TopicKind, classify, encode_bag, parse_bag
from iothub_emulator.test_device_raw import connect_packet, mqtt_string, packet


def test_decoder_reassembles_packets_fed_byte_by_byte():
    stream = codec.encode_publish("a/b", b"hello", qos=1, packet_id=9) + codec.encode_pingresp()
    decoder = codec.PacketDecoder()
    packets = [p for byte in stream for p in decoder.feed(bytes([byte]))]
    assert [p.type for p in packets] == [codec.PacketType.PUBLISH, codec.PacketType.PINGRESP]
    publish = codec.parse_publish(packets[0].flags, packets[0].body)
    assert (publish.topic, publish.payload, publish.qos, publish.packet_id) == (
        "a/b",
        b"hello",
        1,
        9,
    )


def test_decoder_refuses_an_oversized_packet_from_its_header_alone():
    decoder = codec.PacketDecoder(max_packet_size=1000)
    with pytest.raises(codec.PacketTooLargeError):
        decoder.feed(b"\x30\xe9\x07")  # announces 1001 bytes, sends none


@pytest.mark.parametrize(
    "data",
    [
        b"\x00\x00",  # reserved type 0
        b"\x80\x02\x00\x01",  # SUBSCRIBE without the required flags
        b"\x30\x80\x80\x80\x80\x01",  # five-byte remaining length
    ],
)
def test_decoder_rejects_malformed_headers(data):
    with pytest.raises(codec.MalformedPacketError):
        codec.PacketDecoder().feed(data)


def test_connect_round_trip_and_flag_checks():
    raw = connect_packet("d1", "hub/d1/?api-version=1", "secret", keepalive=30)
    [parsed] = codec.PacketDecoder().feed(raw)
    connect = codec.parse_connect(parsed.body)
    assert (connect.client_id, connect.username, connect.password) == (
        "d1",
        "hub/d1/?api-version=1",
        b"secret",
    )
    assert (connect.protocol_level, connect.keepalive) == (4, 30)
    password_only = mqtt_string("MQTT") + bytes([4, 0x40, 0, 60]) + mqtt_string("d1")
    with pytest.raises(codec.MalformedPacketError):
        codec.parse_connect(password_only + mqtt_string("pw"))
    with pytest.raises(codec.MalformedPacketError):
        codec.parse_connect(mqtt_string("MQTT") + bytes([4, 0x01, 0, 60]) + mqtt_string("d1"))


def test_publish_rules():
    with pytest.raises(codec.MalformedPacketError):
        codec.parse_publish(0b0110, mqtt_string("t") + b"\x00\x01")  # QoS 3
    with pytest.raises(codec.MalformedPacketError):
        codec.parse_publish(0, mqtt_string("a/+"))
    with pytest.raises(codec.MalformedPacketError):
        codec.parse_subscribe(packet(8, 2, b"\x00\x01")[2:])  # no filters


def test_property_bag_decoding_keeps_plus_signs():
    assert parse_bag("%24.mid=m%2F1&a=1+1&flag&=x") == {
        "$.mid": "m/1",
        "a": "1+1",
        "flag": "",
        "": "x",
    }
    assert parse_bag(encode_bag({"k &=": "v/+%"})) == {"k &=": "v/+%"}


def test_topic_classification_is_scoped_to_the_identity():
    assert classify("devices/d1/messages/events/a=1", "d1", None).properties == {"a": "1"}
    assert classify("devices/d1/messages/events/", "d1", "m1") is None
    assert (
        classify("devices/d1/modules/m1/messages/events/", "d1", "m1").kind is TopicKind.TELEMETRY
    )
    response = classify("$iothub/methods/res/500/?$rid=a1", "d1", None)
    assert (response.kind, response.status, response.properties) == (
        TopicKind.METHOD_RESPONSE,
        500,
        {"$rid": "a1"},
    )
    assert classify("$iothub/twin/GET/", "d1", None) is None
    assert classify("$iothub/methods/res/ok/?$rid=1", "d1", None) is None


def test_telemetry_fields_split_system_and_application_properties():
    bag = {
        "$.mid": "m",
        "$.cid": "c",
        "$.uid": "u",
        "$.ct": "t",
        "$.ce": "e",
        "$.exp": "x",
        "k": "v",
    }
    assert telemetry_fields(bag, retain=False) == {
        "message_id": "m",
        "correlation_id": "c",
        "user_id": "u",
        "content_type": "t",
        "content_encoding": "e",
        "properties": {"k": "v"},
    }
