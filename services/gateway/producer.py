"""The gateway's producer port and its Kafka adapter.

The HTTP layer only knows `SubmissionProducer`: produce one submission and return where the broker stored
it, or raise `BrokerUnavailable` / `MessageTooLarge`. Tests of the HTTP layer feed a fake of this port;
`KafkaSubmissionProducer` is the real one (aiokafka, acks=all, idempotent), started lazily so the gateway
can come up while the broker is still down and answer 503 until it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from contracts.partitioning import producer_partitioner
from contracts.topics import MAX_PAYLOAD_BYTES
from services.kafka.aio import AIOKafkaProducer, acknowledging_producer
from services.kafka.errors import AioKafkaError as KafkaError
from services.kafka.errors import AioMessageSizeTooLargeError as MessageSizeTooLargeError
from services.kafka.record import Delivered

log = logging.getLogger(__name__)

Headers = Sequence[tuple[str, bytes]]
#: Room for the key, headers and record-batch framing on top of the largest body.
_FRAMING_BYTES = 64 * 1024


class GatewayError(RuntimeError):
    """Root of the gateway's own errors."""


class BrokerUnavailable(GatewayError):
    """The broker did not acknowledge in time (down, unreachable, or topic missing); nothing was stored."""


class MessageTooLarge(GatewayError):
    """The broker refused the record for its size."""


class SubmissionProducer(Protocol):
    """Port: produce submissions to the submissions topic and wait for the broker's acknowledgement."""

    async def start(self) -> None:
        """Connect if possible; must not raise when the broker is down (produce reports that later)."""

    async def stop(self) -> None:
        """Flush and close."""

    async def produce(self, key: bytes, value: bytes, headers: Headers = ()) -> Delivered:
        """Store one record durably (acks=all) or raise BrokerUnavailable / MessageTooLarge."""

    async def ready(self) -> bool:
        """True when the broker answers and the topic exists."""


class KafkaSubmissionProducer:
    """`SubmissionProducer` over aiokafka; every call is bounded by `timeout_s`."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        *,
        timeout_s: float = 5.0,
        max_message_bytes: int = MAX_PAYLOAD_BYTES,
        connect_backoff_s: float = 1.0,
        client_id: str = "regsosek-gateway",
        security: Mapping[str, Any] | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.timeout_s = timeout_s
        self._max_request = max_message_bytes + _FRAMING_BYTES
        self._backoff_s = connect_backoff_s
        self._client_id = client_id
        # SASL options for aiokafka (`GatewaySettings.aiokafka_security`); empty on a plaintext broker.
        self._security = dict(security or {})
        self._producer: AIOKafkaProducer | None = None
        self._lock: asyncio.Lock | None = None
        self._failed_at = float("-inf")

    async def start(self) -> None:
        try:
            async with asyncio.timeout(self.timeout_s):
                await self._connected()
        except (BrokerUnavailable, TimeoutError):
            log.warning("broker %s not reachable at start; answering 503 until it is", self.bootstrap)

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is None:
            return
        # aiokafka's stop() flushes queued records and waits for ever while the broker is down; those
        # records were already answered 503, so shutdown waits one timeout and then drops them.
        try:
            async with asyncio.timeout(self.timeout_s):
                await producer.stop()
        except TimeoutError:
            log.warning("broker %s unreachable at shutdown; unconfirmed records dropped", self.bootstrap)
            with contextlib.suppress(TimeoutError, KafkaError, OSError):
                async with asyncio.timeout(1.0):
                    await producer.client.close()

    async def produce(self, key: bytes, value: bytes, headers: Headers = ()) -> Delivered:
        try:
            async with asyncio.timeout(self.timeout_s):
                producer = await self._connected()
                meta = await producer.send_and_wait(self.topic, value, key=key, headers=list(headers))
        except TimeoutError as exc:
            raise BrokerUnavailable(f"no acknowledgement from the broker within {self.timeout_s:g} s") from exc
        except MessageSizeTooLargeError as exc:
            raise MessageTooLarge(f"the broker refused a {len(value)}-byte record as too large") from exc
        except KafkaError as exc:
            raise BrokerUnavailable(f"the broker refused the record: {exc}") from exc
        return Delivered(meta.topic, meta.partition, meta.offset)

    async def ready(self) -> bool:
        try:
            async with asyncio.timeout(self.timeout_s):
                producer = await self._connected()
                # partitions_for may answer from cached metadata; the forced update is a real round
                # trip, so a broker that went away after start is reported as not ready.
                partitions = await producer.partitions_for(self.topic)
                fresh = await producer.client.force_metadata_update()
        except (TimeoutError, GatewayError, KafkaError):
            return False
        return bool(partitions) and bool(fresh)

    async def _connected(self) -> AIOKafkaProducer:
        if self._producer is not None:
            return self._producer
        if self._lock is None:  # created lazily: it must belong to the running event loop
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._producer is not None:
                return self._producer
            # Right after a failed attempt, fail fast instead of hammering a down broker per request.
            if time.monotonic() - self._failed_at < self._backoff_s:
                raise BrokerUnavailable(f"the broker {self.bootstrap} was unreachable moments ago")
            # acks='all', idempotent: the client's own retries never write a submission twice. Records
            # still queued when we give up expire soon after (the request timeout); a 503 means "not
            # confirmed" (an acknowledgement can be lost on the way back), so devices resend the same
            # submission id and consumers treat a repeat as a duplicate.
            producer = acknowledging_producer(
                self.bootstrap,
                client_id=self._client_id,
                timeout_s=self.timeout_s,
                max_request_size=self._max_request,
                linger_ms=0,
                # By district (contracts.partitioning): a family's revisions keep their order, and a
                # partition owns whole districts, as every other family-keyed topic.
                partitioner=producer_partitioner,
                **self._security,
            )
            try:
                await producer.start()
            except (KafkaError, OSError) as exc:
                self._failed_at = time.monotonic()
                await producer.stop()
                raise BrokerUnavailable(f"cannot connect to the broker {self.bootstrap}: {exc}") from exc
            except BaseException:
                await producer.stop()  # e.g. cancelled by the caller's timeout: leave no client behind
                self._failed_at = time.monotonic()
                raise
            self._producer = producer
            return producer
