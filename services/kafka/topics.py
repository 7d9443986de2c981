"""Provision the topic catalogue on a broker and report how the broker differs from it.

Idempotent: topics that exist are left alone (Kafka cannot shrink partitions or safely flip a cleanup
policy under running consumers), and every difference is reported for an operator to decide.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from contracts.topics import CATALOGUE, TopicSpec
from services.kafka.admin import admin_client


class TopicsError(RuntimeError):
    """The broker could not be reached or refused a topic operation."""


@dataclass(frozen=True)
class TopicDifference:
    """One setting of an existing topic that is not what the catalogue says."""

    topic: str
    setting: str
    expected: str
    actual: str

    def __str__(self) -> str:
        return f"{self.topic}: {self.setting} is {self.actual}, catalogue says {self.expected}"


@dataclass
class TopicReport:
    """What `provision` or `check` found: created, already correct, missing, and differences."""

    created: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    differences: list[TopicDifference] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every catalogue topic exists exactly as specified."""
        return not self.missing and not self.differences


def create_missing(
    bootstrap: str,
    names: Iterable[str],
    *,
    partitions: int,
    configs: Mapping[str, str],
    client_id: str,
    replication_factor: int = 1,
    **security: Any,
) -> list[str]:
    """Create those of `names` the broker lacks (topics outside the catalogue, e.g. per subscriber), all
    with the same partitions and configs; returns the names created. Existing topics are left alone.

    Raises `RuntimeError` naming a topic the broker refused, kafka-python's `KafkaError` or `OSError`
    when the broker cannot be reached. `security`: kafka-python SASL/TLS options.
    """
    admin = admin_client(bootstrap, client_id=client_id, **security)
    try:
        existing = set(admin.list_topics())
        created = []
        for name in names:
            if name in existing:
                continue
            topic = NewTopic(name, partitions, replication_factor, topic_configs=dict(configs))
            try:
                admin.create_topics([topic])
                created.append(name)
            except TopicAlreadyExistsError:
                pass
            except KafkaError as exc:
                raise RuntimeError(f"cannot create topic {name}: {exc}") from exc
        return created
    finally:
        admin.close()


def _admin(bootstrap: str) -> KafkaAdminClient:
    try:
        return admin_client(bootstrap, client_id="regsosek-topics")
    except (KafkaError, OSError) as exc:
        raise TopicsError(f"cannot reach the Kafka broker at {bootstrap}: {exc}") from exc


def provision(
    bootstrap: str, catalogue: Iterable[TopicSpec] = CATALOGUE, *, replication_factor: int = 1
) -> TopicReport:
    """Create the missing catalogue topics; report existing topics that differ from the catalogue."""
    return _run(bootstrap, tuple(catalogue), create=True, replication_factor=replication_factor)


def check(bootstrap: str, catalogue: Iterable[TopicSpec] = CATALOGUE) -> TopicReport:
    """Compare the broker with the catalogue without changing anything."""
    return _run(bootstrap, tuple(catalogue), create=False, replication_factor=1)


def _run(bootstrap: str, specs: tuple[TopicSpec, ...], *, create: bool, replication_factor: int) -> TopicReport:
    report = TopicReport()
    admin = _admin(bootstrap)
    try:
        existing = set(admin.list_topics())
        present = [s for s in specs if s.name in existing]
        for spec in specs:
            if spec.name in existing:
                continue
            if not create:
                report.missing.append(spec.name)
                continue
            try:
                # One request per topic: a batch fails as a whole when one topic already exists.
                admin.create_topics(
                    [NewTopic(spec.name, spec.partitions, replication_factor, topic_configs=spec.configs())]
                )
                report.created.append(spec.name)
            except TopicAlreadyExistsError:
                present.append(spec)  # created concurrently by someone else: check it like the others
            except KafkaError as exc:
                raise TopicsError(f"creating {spec.name} failed: {exc}") from exc
        _wait_visible(admin, [s for s in specs if s.name in report.created])
        differences = _compare(admin, present)
        report.differences.extend(differences)
        differing = {d.topic for d in differences}
        report.unchanged.extend(s.name for s in present if s.name not in differing)
    except KafkaError as exc:
        raise TopicsError(f"talking to the Kafka broker at {bootstrap} failed: {exc}") from exc
    finally:
        admin.close()
    return report


def _wait_visible(admin: KafkaAdminClient, created: list[TopicSpec], timeout_s: float = 30.0) -> None:
    # KRaft commits a new topic before every broker's metadata cache has it; wait until all partitions
    # have a leader so that a producer or consumer started right after provisioning finds them.
    if not created:
        return
    deadline = time.monotonic() + timeout_s
    while True:
        described = {t["topic"]: t["partitions"] for t in admin.describe_topics([s.name for s in created])}
        pending = [
            s.name
            for s in created
            if len(described.get(s.name, [])) != s.partitions or any(p["leader"] < 0 for p in described.get(s.name, []))
        ]
        if not pending:
            return
        if time.monotonic() > deadline:
            raise TopicsError(f"created topics did not become available within {timeout_s:.0f} s: {pending}")
        time.sleep(0.1)


def _compare(admin: KafkaAdminClient, specs: list[TopicSpec]) -> list[TopicDifference]:
    if not specs:
        return []
    partitions = {t["topic"]: len(t["partitions"]) for t in admin.describe_topics([s.name for s in specs])}
    resources = [ConfigResource(ConfigResourceType.TOPIC, s.name, dict.fromkeys(s.configs())) for s in specs]
    actual_configs: dict[str, dict[str, str]] = {}
    for response in admin.describe_configs(resources):
        for resource in response.to_object()["resources"]:
            entries = resource["config_entries"]
            actual_configs[resource["resource_name"]] = {e["config_names"]: e["config_value"] for e in entries}
    differences = []
    for spec in specs:
        got = partitions.get(spec.name)
        if got != spec.partitions:
            differences.append(TopicDifference(spec.name, "partitions", str(spec.partitions), str(got)))
        configs = actual_configs.get(spec.name, {})
        for key, expected in spec.configs().items():
            if configs.get(key) != expected:
                differences.append(TopicDifference(spec.name, key, expected, str(configs.get(key))))
    return differences
