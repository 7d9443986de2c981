"""The base exceptions of the two Kafka client libraries, for callers that only need to catch them.

`KafkaError` is kafka-python's (sync clients: publisher, review ingest, admin); `AioKafkaError` is
aiokafka's (async clients: gateway, linker readers). They are different classes: catch the one of the
client that raised. `AioMessageSizeTooLargeError`: aiokafka refused a record larger than the producer's
`max_request_size`. `AioProducerFenced`: a transactional producer was fenced (a newer producer registered
the same transactional id, or the broker aborted a transaction that outlived its timeout); aiokafka
raises it for the broker's PRODUCER_FENCED and INVALID_PRODUCER_EPOCH answers alike.
"""

from __future__ import annotations

from aiokafka.errors import KafkaError as AioKafkaError
from aiokafka.errors import MessageSizeTooLargeError as AioMessageSizeTooLargeError
from aiokafka.errors import ProducerFenced as AioProducerFenced
from kafka.errors import KafkaError

__all__ = ["AioKafkaError", "AioMessageSizeTooLargeError", "AioProducerFenced", "KafkaError"]
