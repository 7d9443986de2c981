"""CloudEvents headers of output records: the one place that builds them, for every producer.

Binary content mode of the CloudEvents Kafka protocol binding, through the `cloudevents` SDK: the value
stays the record's JSON, and the attributes travel as headers `ce_specversion`, `ce_id`, `ce_source`,
`ce_type`, `ce_time`, `ce_dataschema` and `content-type`. A tombstone (no value) has no data, so it
carries neither `content-type` nor `ce_dataschema`.

Every header is a function of the record: `ce_time` is the event's own time (never the clock at produce
time), `ce_id` a digest of topic, key, value and time (or the record's own deterministic id), and type,
source and schema are constants (`contracts.events`). Re-processing the same input therefore writes
byte-identical headers, and the Kafka record timestamp (`timestamp_ms`, CreateTime) is the same event
time, so a replay keeps timestamps too. The headers are (str, bytes) pairs in name order: the form that
aiokafka (and faust on top of it) and kafka-python all take.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping

from cloudevents.core.bindings.kafka import to_binary
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from contracts.events import CONTENT_TYPE, SPEC_VERSION, EventKind

Headers = list[tuple[str, bytes]]

_FORMAT = JSONFormat()
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def utc(time: dt.datetime) -> dt.datetime:
    """`time` in UTC; a naive time is refused (it would be read in the local zone of each machine)."""
    if time.tzinfo is None or time.utcoffset() is None:
        raise ValueError("an event time must carry its UTC offset")
    return time.astimezone(dt.UTC)


def timestamp_ms(time: dt.datetime) -> int:
    """The Kafka record timestamp (CreateTime, ms since the epoch) of an event that happened at `time`."""
    # Integer arithmetic, floored to the millisecond: no float rounding can move it between runs.
    return (utc(time) - _EPOCH) // dt.timedelta(milliseconds=1)


def event_id(topic: str, key: bytes | None, value: bytes | None, time: dt.datetime) -> str:
    """A deterministic event id: SHA-256 over topic, key, value and time (32 hex digits).

    Each part is length-prefixed, and a missing key or value is told apart from an empty one, so two
    different records never share the input of the digest. The time is part of it because a tombstone of
    a key can recur (the same topic, key and no value) as a different event.
    """
    digest = hashlib.sha256()
    for part in (topic.encode(), key, value, utc(time).isoformat().encode()):
        if part is None:
            digest.update(b"-")
        else:
            digest.update(b"%d:" % len(part))
            digest.update(part)
    return digest.hexdigest()[:32]


def cloud_event_headers(
    kind: EventKind,
    *,
    source: str,
    topic: str,
    key: bytes | None,
    value: bytes | None,
    time: dt.datetime,
    id: str | None = None,  # noqa: A002 - the CloudEvents attribute's name
) -> Headers:
    """The CloudEvents headers of one record (binary mode), sorted by name.

    `time` is the event's own time; `id` defaults to `event_id(topic, key, value, time)`.
    """
    when = utc(time)
    attributes: dict[str, object] = {
        "specversion": SPEC_VERSION,
        "id": id or event_id(topic, key, value, when),
        "source": source,
        "type": kind.type,
        "time": when,
    }
    if value is not None:
        attributes["datacontenttype"] = CONTENT_TYPE
        attributes["dataschema"] = kind.dataschema
    message = to_binary(CloudEvent(attributes, value), _FORMAT, key_mapper=lambda _event: key)
    return sorted(message.headers.items())


class EventStamper:
    """The headers and Kafka timestamp of the records one service writes, by topic.

    `kinds` maps each topic the service writes (names from its settings) to its kind; `source` is the
    service's `ce_source`. A record without an event time, or to a topic not in `kinds`, is a bug in
    the caller and raises.
    """

    def __init__(self, kinds: Mapping[str, EventKind], source: str) -> None:
        self._kinds = dict(kinds)
        self._source = source

    def __call__(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        time: dt.datetime | None,
        *,
        id: str | None = None,  # noqa: A002
    ) -> tuple[Headers, int]:
        """(headers, timestamp in ms) of one record."""
        if time is None:
            raise ValueError(f"a record for {topic} has no event time")
        kind = self._kinds.get(topic)
        if kind is None:
            raise KeyError(f"no event kind for topic {topic!r}")
        headers = cloud_event_headers(kind, source=self._source, topic=topic, key=key, value=value, time=time, id=id)
        return headers, timestamp_ms(time)


def faust_timestamp(ms: int) -> float:
    """`ms` as the seconds faust's producer takes: it sends `int(seconds * 1000.0)`, and the half
    millisecond keeps float rounding from turning 123 ms into 122."""
    return (ms + 0.5) / 1000.0
