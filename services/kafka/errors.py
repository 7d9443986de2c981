"""The base exceptions of the two Kafka client libraries, for callers that only need to catch them.

`KafkaError` is kafka-python's (sync clients: publisher, review ingest, admin); `AioKafkaError` is
aiokafka's (async clients: gateway, linker readers). They are different classes: catch the one of the
client that raised. `AioMessageSizeTooLargeError`: aiokafka refused a record larger than the producer's
`max_request_size`.
"""

from __future__ import annotations

from aiokafka.errors import KafkaError as AioKafkaError
from aiokafka.errors import MessageSizeTooLargeError as AioMessageSizeTooLargeError
from kafka.errors import KafkaError

__all__ = ["AioKafkaError", "AioMessageSizeTooLargeError", "KafkaError"]
