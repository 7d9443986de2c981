"""Shared by the gateway's unit tests: one team token and an app over a fake producer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from services.gateway.app import build_app
from services.gateway.settings import GatewaySettings
from tests.support.gateway import FakeSubmissionProducer

TOKEN = "team-token-0123456789abcdef"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
AUTH = {**BEARER, "Content-Type": "application/json"}


@pytest.fixture
def producer() -> FakeSubmissionProducer:
    """The fake producer behind `client`: what the gateway produced, and its failure switches."""
    return FakeSubmissionProducer()


@pytest.fixture
def client(producer: FakeSubmissionProducer) -> Iterator[TestClient]:
    """The gateway app (TOKEN is team-3603-a, bodies of at most 4096 bytes) over `producer`."""
    settings = GatewaySettings(tokens={TOKEN: "team-3603-a"}, max_body_bytes=4096)
    with TestClient(build_app(settings, producer=producer)) as test_client:
        yield test_client
