"""What IoT Hub receives for one AWS telemetry message."""

from bridge.relay.message import blocks, build_message, stable_message_id


def test_a_json_message_keeps_its_bytes_and_carries_the_topic_and_content_type():
    payload = b'{"temp": 21.5}'
    message = build_message("pump-1", "dt/pump-1/telemetry", payload, 1_700_000_000.25)
    assert message.body == payload
    assert (message.content_type, message.content_encoding) == ("application/json", "utf-8")
    assert message.properties == {
        "awsTopic": "dt/pump-1/telemetry",
        "awsTopic1": "dt",
        "awsTopic2": "pump-1",
        "awsTopic3": "telemetry",
        "awsReceivedAt": "2023-11-14T22:13:20.250Z",
    }


def test_binary_and_text_payloads_get_no_json_content_type():
    for payload in (b"\x00\x01\xff", b"temp=21", b""):
        message = build_message("d", "dt/d", payload, 0.0)
        assert (message.content_type, message.content_encoding) == (None, None)


def test_the_message_id_is_stable_for_a_redelivery_and_distinct_otherwise():
    first = build_message("d", "dt/d", b'{"n":1}', 10.0)
    redelivered = build_message("d", "dt/d", b'{"n":1}', 99.0)  # later, after a restart
    assert first.message_id == redelivered.message_id
    assert stable_message_id("d", "dt/d", b'{"n":2}') != first.message_id
    assert stable_message_id("e", "dt/d", b'{"n":1}') != first.message_id
    # Field boundaries count: ("ab", "c") and ("a", "bc") differ.
    assert stable_message_id("ab", "c", b"") != stable_message_id("a", "bc", b"")


def test_daily_quota_counts_4kb_blocks():
    assert [blocks(n) for n in (0, 1, 4096, 4097, 256 * 1024)] == [1, 1, 1, 2, 64]
