"""Log redaction: payload bytes of Kafka client DEBUG lines and 16-digit numbers never reach a handler."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from services.privacy.log_redaction import install_log_redaction, redact_text, uninstall_log_redaction

NIK = "3603121505800002"


@pytest.fixture
def redaction() -> Iterator[None]:
    install_log_redaction()
    install_log_redaction()  # idempotent
    yield
    uninstall_log_redaction()


def test_client_payloads_and_niks_are_redacted(redaction: None, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    payload = f'{{"name": "Ahmad Fauzi", "nik": "{NIK}"}}'.encode()
    logging.getLogger("kafka.producer.kafka").debug("Sending (key=%r value=%r) to %s", b"k-1", payload, "tp")
    logging.getLogger("faust.topics").debug("send: topic=%r k=%r v=%r", "t", b"k", payload)
    logging.getLogger("services.anything").info("member %s linked, kk %s", NIK, "3603121705150003")
    logging.getLogger("services.anything").info("batch of %d records", 12)
    assert [r.getMessage() for r in caplog.records] == [
        f"Sending (key=<3 bytes> value=<{len(payload)} bytes>) to tp",
        f"send: topic='t' k=<1 bytes> v=<{len(payload)} bytes>",
        "member <16 digits> linked, kk <16 digits>",
        "batch of 12 records",
    ]
    assert "Ahmad" not in caplog.text and NIK not in caplog.text


def test_redact_text_only_touches_exactly_sixteen_digits() -> None:
    assert redact_text(f"a {NIK} b") == "a <16 digits> b"
    assert redact_text("offset 123456789012345 and 12345678901234567") == (
        "offset 123456789012345 and 12345678901234567"
    )


def test_uninstalled_factory_leaves_records_alone(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    logging.getLogger("kafka.x").info("v=%r", b"abc")
    assert caplog.records[-1].getMessage() == "v=b'abc'"
