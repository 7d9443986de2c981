"""What the session broker fixtures of tests/conftest.py give a test, as types a test can annotate with."""

from __future__ import annotations

from dataclasses import dataclass

from services.kafka.topics import TopicReport
from tools import broker as broker_service


@dataclass(frozen=True)
class RunningBroker:
    """The session broker as tests see it (fixture `kafka_broker`)."""

    bootstrap: str
    config: broker_service.BrokerConfig
    pid: int
    start_seconds: float


@dataclass(frozen=True)
class ProvisionedBroker:
    """The session broker after the topic catalogue was provisioned on it (fixture `kafka_topics`)."""

    bootstrap: str
    first_report: TopicReport
