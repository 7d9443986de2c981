"""One batch through the linker's pipeline the way its handler runs it (`SubmissionHandler.handle_pipelined`),
and a whole reference run of it in-process (`ReferenceRun`)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from contracts.decode import decode_family_submission
from contracts.submission import FamilySubmission
from integration.ids import PersonIds
from services.linker.pipeline import BatchResult, OutboundRecord, OutputTopics, SubmissionLinker
from services.linker.store import LinkStore, LinkStoreLike


def link_batch(
    pipeline: SubmissionLinker,
    store: LinkStoreLike,
    submissions: Sequence[FamilySubmission],
    teams: Sequence[str | None] | None = None,
    *,
    partition: int = 0,
) -> BatchResult:
    """`prelink`, then `finish` against the store's view of the batch (every family on `partition`).

    The store is not written: as in production, the caller applies `BatchResult.update`.
    """
    view = store.batch({sub.family_key.key: partition for sub in submissions})
    return pipeline.finish(pipeline.prelink(submissions, teams), view)


class ReferenceRun:
    """The whole pipeline in-process on one engine holding the whole master: what the linker instances
    of an e2e test must publish. `latest` holds the last value per key of the member ("m") and family
    ("f") records; `updates` every update event per member key.
    """

    def __init__(self, engine: Any, ids: PersonIds, village_crosswalk: Mapping[str, str] | None = None) -> None:
        from services.linker.updates.applier import ChangeApplier, UpdateTopics
        from services.linker.updates.handler import StoreMemberIndex

        self.engine = engine
        self.store = LinkStore(":memory:")
        self.pipeline = SubmissionLinker(engine, ids, OutputTopics("m", "f", "r"), village_crosswalk=village_crosswalk)
        self._members = StoreMemberIndex(lambda: {0: self.store})
        self.applier = ChangeApplier(engine, self._members, ids, UpdateTopics("m", "r", "u", "f"))
        self.latest: dict[str, dict[str, bytes]] = {"m": {}, "f": {}}
        self.updates: dict[str, set[bytes]] = defaultdict(set)

    @classmethod
    def from_files(cls, world: Path, model: Path, cache_dir: Path, ids: PersonIds) -> ReferenceRun:
        """The real engine on a generated world and a model artefact, as a linker instance loads them."""
        from services.linker.engine_adapter import load_village_crosswalk
        from services.linker.engine_link import EngineMemberLinker
        from services.linker.settings import LinkerSettings

        engine = EngineMemberLinker.from_files(world, model, cache_dir=cache_dir)
        crosswalk = load_village_crosswalk(LinkerSettings(world_dir=world, model_path=model))
        return cls(engine, ids, crosswalk)

    def _keep(self, records: Sequence[OutboundRecord]) -> None:
        for rec in records:
            key = (rec.key or b"").decode()
            if rec.topic == "u":
                assert rec.value is not None, "an update event is never a tombstone"
                self.updates[key].add(rec.value)
            elif rec.topic in self.latest:
                if rec.value is None:
                    self.latest[rec.topic].pop(key, None)
                else:
                    self.latest[rec.topic][key] = rec.value

    def link(self, records: Sequence[tuple[bytes, bytes]], batch: int = 200) -> None:
        """Link (key, submission bytes) records in batches, as the instances receive them."""
        for start in range(0, len(records), batch):
            subs = [decode_family_submission(v, key=k) for k, v in records[start : start + batch]]
            result = link_batch(self.pipeline, self.store, subs)
            self.store.apply(result.update)
            self._keep(result.records)

    def change(self, values: Sequence[bytes], at_ms: int) -> None:
        """Apply population change records (their values) as one batch of the update path."""
        from services.kafka.record import KafkaRecord
        from services.linker.updates.changes import Change, classify_change

        parsed = []
        for value in values:
            c = classify_change(value, b"k", KafkaRecord("t", 0, 0, None, None, at_ms), "population", max_bytes=1 << 20)
            assert isinstance(c, Change), c
            parsed.append(c)
        result = self.applier.process(parsed)
        self._members.save(result.states.values())
        self._keep(result.records)
