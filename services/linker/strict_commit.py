"""faust's consumer with the linker's offset account: it commits only past records the linker finished.

`LinkerApp` is the faust app the linker runs; its consumer (`StrictCommitConsumer`) takes the offset to
commit for each partition from an `OffsetLedger` (services/linker/offset_ledger.py, which says why
faust's own account loses records across a rebalance) instead of from the offsets its streams acked:

- after each seek to the committed offsets (every assignment ends with one) the ledger starts each
  assigned partition (at the committed offset, the log start when that is later or nothing was
  committed yet, or this instance's own position when it kept the partition and is ahead), and the
  consumer seeks every partition faust did not seek there;
- the agent shows each batch to `delivered()` before linking it: records skipped on their way to it
  are read again;
- the submissions agent marks a record processed once its batch is durable (`processed(message)`,
  called where the agent acks it);
- a commit takes the ledger's position, which passes processed offsets only.

The one agent of the app (link-submissions) marks every record it finishes; an agent that did not would
never commit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import faust
from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.types import TP, Message

from services.linker.offset_ledger import OffsetLedger

log = logging.getLogger("regsosek.linker")


class StrictCommitConsumer(aiokafka_driver.Consumer):
    """faust's aiokafka consumer; the offsets it commits come from `ledger`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ledger: OffsetLedger[TP] = OffsetLedger()
        self._held_reported: set[tuple[TP, int]] = set()
        self.on_reread: Callable[[int], None] | None = None  # called with the count of records sought back to

    def processed(self, message: Message) -> None:
        """The record is done (outputs acknowledged, state stored): its offset may be committed."""
        self.ledger.processed(message.tp, message.offset)

    async def on_partitions_assigned(self, assigned: set[TP], generation_id: int = 0) -> None:
        self.ledger.keep_only(assigned)
        await super().on_partitions_assigned(assigned, generation_id)

    async def seek_to_committed(self) -> Mapping[TP, int]:
        committed: Mapping[TP, int | None] = await super().seek_to_committed()
        # A partition with no commit, or one older than the log start (retention removed it), is read
        # from the log start (auto_offset_reset=earliest).
        earliest = await self.earliest_offsets(*committed) if committed else {}
        starts = self.ledger.start({tp: max(offset or 0, earliest.get(tp, 0)) for tp, offset in committed.items()})
        for tp, start in starts.items():
            # faust sought only the partitions committed above 0; the others keep the position their
            # fetcher had, which need not be their start.
            if start != committed.get(tp) or not start:
                await self.seek(tp, start)
        self._held_reported.clear()
        return committed  # type: ignore[return-value]

    async def delivered(self, messages: Iterable[Message]) -> None:
        """The agent got these records (in order per partition): seek back over any it was not given."""
        for message in messages:
            back = self.ledger.delivered(message.tp, message.offset)
            if back is not None:
                # Positions only.
                log.warning(
                    "offsets: %s[%d] records %d..%d were skipped before the agent; reading them again",
                    message.tp.topic,
                    message.tp.partition,
                    back,
                    message.offset - 1,
                )
                await self.seek(message.tp, back)
                if self.on_reread is not None:
                    self.on_reread(message.offset - back)

    def _new_offset(self, tp: TP) -> int | None:
        # faust's own account (acked offsets and detected gaps) is not used: keep it from growing.
        self._acked[tp].clear()
        self._acked_index[tp].clear()
        self._gap.pop(tp, None)
        offset = self.ledger.advance(tp)
        held = self.ledger.held().get(tp)
        if held is not None and (tp, held) not in self._held_reported:
            self._held_reported.add((tp, held))
            # Positions only. Expected while a skipped record is read again, or a batch is in flight;
            # a commit held for long shows as consumer lag.
            log.info(
                "offsets: %s[%d] commits held at %d: later records are done, that one is not (yet)",
                tp.topic,
                tp.partition,
                held,
            )
        return offset


class StrictCommitTransport(aiokafka_driver.Transport):
    """faust's aiokafka transport with the strict-commit consumer."""

    Consumer = StrictCommitConsumer


class LinkerApp(faust.App):
    """The linker's faust app: Kafka through aiokafka, offsets committed by the ledger."""

    def _new_transport(self) -> StrictCommitTransport:
        return StrictCommitTransport(self.conf.broker_consumer, self)

    @property
    def strict_consumer(self) -> StrictCommitConsumer:
        consumer = self.consumer
        if not isinstance(consumer, StrictCommitConsumer):  # pragma: no cover - a faust change
            raise TypeError(f"the linker's consumer is a {type(consumer).__name__}, not the strict-commit one")
        return consumer
