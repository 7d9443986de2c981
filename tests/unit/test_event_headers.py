"""The CloudEvents headers of output records (services.kafka.events): exact, deterministic, no wall clock."""

from __future__ import annotations

import datetime as dt

import pytest

from contracts import events as ce
from services.kafka.events import EventStamper, cloud_event_headers, event_id, faust_timestamp, timestamp_ms

WIB = dt.timezone(dt.timedelta(hours=7))
TIME = dt.datetime(2022, 10, 20, 9, 15, 0, 123456, tzinfo=WIB)
KEY = b"3603010001000100001001-01"
VALUE = b'{"member_key":"3603010001000100001001-01"}'


def test_a_member_record_gets_exact_binary_mode_headers() -> None:
    headers = cloud_event_headers(
        ce.MEMBER, source=ce.LINKER_SOURCE, topic="linkage.members.v1", key=KEY, value=VALUE, time=TIME
    )
    assert headers == [
        ("ce_dataschema", b"urn:regsosek:contract:linked_member.v1"),
        ("ce_id", event_id("linkage.members.v1", KEY, VALUE, TIME).encode()),
        ("ce_source", b"urn:regsosek:service:linker"),
        ("ce_specversion", b"1.0"),
        ("ce_time", b"2022-10-20T02:15:00.123456Z"),
        ("ce_type", b"id.go.bps.regsosek.linkage.member.v1"),
        ("content-type", b"application/json"),
    ]
    assert len(event_id("linkage.members.v1", KEY, VALUE, TIME)) == 32


def test_the_headers_are_a_function_of_the_record_only() -> None:
    def build() -> list[tuple[str, bytes]]:
        return cloud_event_headers(ce.FAMILY, source=ce.LINKER_SOURCE, topic="f", key=KEY, value=VALUE, time=TIME)

    assert build() == build()
    other = cloud_event_headers(ce.FAMILY, source=ce.LINKER_SOURCE, topic="f", key=KEY, value=VALUE + b" ", time=TIME)
    assert dict(other)["ce_id"] != dict(build())["ce_id"]


def test_a_tombstone_has_no_content_type_or_schema_and_its_id_depends_on_the_time() -> None:
    later = TIME + dt.timedelta(days=1)
    first = dict(cloud_event_headers(ce.MEMBER, source="s", topic="m", key=KEY, value=None, time=TIME))
    second = dict(cloud_event_headers(ce.MEMBER, source="s", topic="m", key=KEY, value=None, time=later))
    assert sorted(first) == ["ce_id", "ce_source", "ce_specversion", "ce_time", "ce_type"]
    assert first["ce_id"] != second["ce_id"]
    # an empty value is not a tombstone
    assert event_id("m", KEY, b"", TIME) != event_id("m", KEY, None, TIME)


def test_the_record_timestamp_is_the_event_time_in_exact_milliseconds() -> None:
    assert timestamp_ms(TIME) == 1666232100123
    for ms in (1666232100123, 1666232100999, 1, 1714530600001):
        assert int(faust_timestamp(ms) * 1000.0) == ms  # what faust's producer sends


def test_the_stamper_refuses_a_record_without_time_or_kind() -> None:
    stamp = EventStamper({"m": ce.MEMBER}, ce.LINKER_SOURCE)
    headers, ts = stamp("m", KEY, VALUE, TIME)
    assert (dict(headers)["ce_type"], ts) == (b"id.go.bps.regsosek.linkage.member.v1", 1666232100123)
    with pytest.raises(ValueError, match="no event time"):
        stamp("m", KEY, VALUE, None)
    with pytest.raises(KeyError):
        stamp("x", KEY, VALUE, TIME)
    with pytest.raises(ValueError, match="UTC offset"):
        stamp("m", KEY, VALUE, dt.datetime(2022, 1, 1))  # noqa: DTZ001 - the naive time under test
