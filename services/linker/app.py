"""The faust app of the linker: consume submissions, dead-letter bad ones, link in micro-batches, produce.

Delivery order per micro-batch (at_least_once):
1. classify every record (bad ones become dead letters, the stream keeps going);
2. link the valid ones (engine call in a worker thread, so the event loop keeps heartbeating);
3. produce all outputs and dead letters and AWAIT every broker acknowledgement (acks=all);
   With a link-state changelog (services/linker/changelog.py), each changed family's state record is
   written to the changelog partition of the family's submissions partition, one transaction per
   partition on that partition's producer (services/linker/changelog_kafka.py), committed;
4. apply the batch to the link store (with the changelog offsets its records reached);
5. only then the batch's events are acked and marked processed; a commit passes processed offsets only
   (services/linker/strict_commit.py: faust's own account loses records across a rebalance).
A partition whose changelog transaction was FENCED (another instance took it over: this one overran
the rebalance timeout) skips 4 and 5: its part of the batch is not applied, its events are not acked
(their offsets stay uncommitted; the new owner re-processes them), its file is closed, and the
instance takes no more records of it until the group assigns it here again.
A crash anywhere before 5 re-delivers the batch; every output is deterministic, so the re-processing
writes byte-identical records under the same keys. Infrastructure failures (engine, broker, store) crash
the worker on purpose: skipping a batch would lose it, so the supervisor restarts the process instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal, Protocol

from faust.types import TP, EventT

from contracts import events as ce
from contracts.dead_letter import DeadLetter
from contracts.linkage_outputs import to_canonical_json
from contracts.partitioning import producer_partitioner
from contracts.submission import FamilySubmission
from integration.ids import PersonIds
from integration.port import MemberLinker
from services.kafka.events import EventStamper, faust_timestamp
from services.kafka.record import KafkaRecord
from services.linker import changelog
from services.linker.admission import AdmissionRules, refusal_dead_letter, team_of
from services.linker.changelog import ChangelogWrite, ChangelogWriter, SendWriter
from services.linker.changelog_kafka import KafkaChangelogReader, KafkaChangelogWriter
from services.linker.deadletter import classify_submission, dead_letter_key
from services.linker.errors import LinkerConfigError
from services.linker.kafka_sensor import KafkaClientSensor
from services.linker.partitioned_store import PartitionedLinkStore
from services.linker.pipeline import BatchResult, OutboundRecord, OutputTopics, Prelinked, Send, SubmissionLinker
from services.linker.progress import SubmissionsProgress
from services.linker.settings import LinkerSettings
from services.linker.standby import install_standby
from services.linker.storage_errors import describe_failure
from services.linker.store import BatchStore, LinkStoreLike
from services.linker.strict_commit import LinkerApp
from services.linker.updates.decision_wiring import ReviewDecisions, install_decisions
from services.linker.updates.wiring import MasterUpdates, install_updates
from services.observability.recorder import BatchRecorder

log = logging.getLogger("regsosek.linker")


class HoldPartitions(Protocol):
    """Makes the engine hold the districts of `partitions` (of a topic of `reported` partitions)."""

    def __call__(self, partitions: Collection[int], reported: int | None = None, *, only: bool = False) -> int: ...


def master_shard_holder(settings: LinkerSettings, linker: MemberLinker) -> HoldPartitions | None:
    """With REGSOSEK_LINKER_MASTER_SHARDING: the call that makes the engine hold the master rows of the
    districts of some submissions partitions (None when sharding is off); fails fast when the engine
    holds no shard.

    The call takes the topic's partition count as the broker reports it (the consumer's metadata, which
    a consumer has once it is assigned partitions), which wins over the setting and the catalogue: a
    deployment that created its topics with `regsosek topics create --partitions 64`, or that renamed
    them, needs no second setting. A wrong count would cost time, not links: a record whose district is
    not held brings its district in."""
    if not settings.master_sharding:
        return None
    hold = getattr(linker, "hold_partitions", None)
    if hold is None or not getattr(linker, "sharded", False):
        raise LinkerConfigError("REGSOSEK_LINKER_MASTER_SHARDING is on but the configured engine holds no shard")
    from contracts.topics import topic_spec

    configured = settings.master_shard_partitions
    if configured is None:
        with contextlib.suppress(KeyError):  # a private topic name: only the broker knows the count
            configured = topic_spec(settings.submissions_topic).partitions

    def hold_partitions(partitions: Collection[int], reported: int | None = None, *, only: bool = False) -> int:
        count = reported or configured
        if count is None:
            raise RuntimeError(
                f"the partition count of {settings.submissions_topic!r} is unknown: the consumer has no "
                "metadata for it yet; set REGSOSEK_LINKER_MASTER_SHARD_PARTITIONS"
            )
        added: int = hold(partitions, count, only=only)
        return added

    return hold_partitions


@dataclass
class LinkerCounters:
    """Running totals of this process (logged per batch; a metrics adapter can read them)."""

    batches: int = 0
    submissions: int = 0
    members: int = 0
    stale: int = 0
    not_owned: int = 0  # records of partitions revoked before their batch ran (left to the new owner)
    dead_letters: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Received:
    """A valid submission with where it came from and the team its header names (for refusals)."""

    submission: FamilySubmission
    team: str | None
    source: KafkaRecord
    key: bytes | None
    value: bytes | None


class SubmissionHandler:
    """Handles one micro-batch of raw records end to end (steps 1-4 of the module docstring)."""

    def __init__(
        self,
        settings: LinkerSettings,
        pipeline: SubmissionLinker,
        store: LinkStoreLike,
        recorder: BatchRecorder | None = None,
    ) -> None:
        self._settings = settings
        self._recorder = recorder  # metrics of finished batches (services.observability), optional
        self._pipeline = pipeline
        self._store = store
        self._send: Send | None = None
        self._owned: Callable[[], Collection[int]] | None = None
        self._pending: asyncio.Future[None] | None = None  # the store write left running by the last batch
        self._changelog = settings.changelog_topic or None
        self._writer: ChangelogWriter | None = None
        self.counters = LinkerCounters()

    def bind_sender(self, send: Send) -> None:
        """How records are produced: `await send(record)` returns the broker-ack future."""
        self._send = send

    def bind_changelog(self, writer: ChangelogWriter) -> None:
        """How state records are written (the fenced Kafka writer); by default the sender, unfenced."""
        self._writer = writer

    def bind_ownership(self, owned: Callable[[], Collection[int]]) -> None:
        """Which source partitions this instance owns now; a batch drops records of any other partition."""
        self._owned = owned

    def _owned_events(self, events: Sequence[EventT[Any]]) -> Sequence[EventT[Any]]:
        # Checked while the batch holds the agents' lock, which the revocation handler also takes before
        # it closes the link-store files: a partition is either still owned (and its file stays open
        # for the whole batch: read, produce, acks, store write) or already handed over, and then its
        # records are not linked here. Their offsets are not committed (faust discards commits of
        # revoked partitions), so the new owner re-processes them with the moved link-store state.
        if self._owned is None:
            return events
        owned = set(self._owned())
        kept = [e for e in events if e.message.partition in owned]
        if len(kept) < len(events):
            lost = sorted({e.message.partition for e in events} - owned)
            self.counters.not_owned += len(events) - len(kept)
            log.warning(
                "dropped %d records of partitions %s revoked (or fenced) before their batch ran",
                len(events) - len(kept),
                lost,
            )
        return kept

    def classify(self, events: Sequence[EventT[Any]]) -> tuple[list[Received], list[OutboundRecord]]:
        """Valid submissions (with their team and position), and the dead-letter records of the bad ones."""
        accepted: list[Received] = []
        dead: list[OutboundRecord] = []
        for event in events:
            msg = event.message
            source = KafkaRecord.from_seconds(msg)
            limit = self._settings.max_payload_bytes
            result = classify_submission(msg.value, msg.key, source, max_bytes=limit)
            if isinstance(result, DeadLetter):
                reason = result.reason.value
                self.counters.dead_letters[reason] = self.counters.dead_letters.get(reason, 0) + 1
                # Position and reason only: the payload may hold NIKs and names.
                log.warning("dead-lettered %s[%d]@%d: %s", msg.topic, msg.partition, msg.offset, reason)
                key = dead_letter_key(msg.key)
                dead.append(
                    OutboundRecord(self._settings.dlq_topic, key, to_canonical_json(result), result.dead_lettered_at)
                )
            else:
                accepted.append(Received(result, team_of(msg.headers), source, msg.key, msg.value))
        return accepted, dead

    def refused(self, received: Sequence[Received], result: BatchResult) -> list[OutboundRecord]:
        """Dead letters of the submissions the owner or revision-step rule refused."""
        out: list[OutboundRecord] = []
        for refusal in result.refused:
            got = received[refusal.index]
            reason = refusal.reason.value
            self.counters.dead_letters[reason] = self.counters.dead_letters.get(reason, 0) + 1
            src = got.source
            log.warning("dead-lettered %s[%d]@%d: %s", src.topic, src.partition, src.offset, reason)
            letter = refusal_dead_letter(refusal, got.value, got.key, src)
            out.append(
                OutboundRecord(self._settings.dlq_topic, got.key, to_canonical_json(letter), letter.dead_lettered_at)
            )
        return out

    async def settle(self) -> None:
        """Wait for the link-store write the last pipelined batch left running; raises if it failed."""
        if self._pending is not None:
            await asyncio.shield(self._pending)

    async def handle_pipelined(
        self, events: Sequence[EventT[Any]], on_stored: Callable[[Sequence[EventT[Any]]], None]
    ) -> BatchResult:
        """Classify, link, produce and wait for every acknowledgement; return with the link-store write
        still running.

        The next batch links while this write finishes, then waits for it (`settle`) before it reads
        the store. `on_stored(handled)` runs once the write is durable, with the events this batch
        handled (not those of partitions revoked before it ran): the agent acks the events there, so
        their offsets are still committed only after the link store has the batch (a failed write
        never calls it, and the worker crashes).
        """
        started = time.perf_counter()
        events = self._owned_events(events)
        accepted, records = self.classify(events)
        subs, teams = [r.submission for r in accepted], [r.team for r in accepted]
        # A family's state lives in the file of the partition its records arrive on.
        view = self._store.batch({r.submission.family_key.key: r.source.partition for r in accepted})
        pre: Prelinked | None = await asyncio.to_thread(self._pipeline.prelink, subs, teams) if accepted else None
        await self.settle()  # this batch must read what the previous one wrote
        result = await asyncio.to_thread(self._pipeline.finish, pre, view) if pre is not None else BatchResult()
        records.extend(self.refused(accepted, result))
        records.extend(result.records)
        state_records = self._changelog_records(
            result, view, {r.submission.family_key.key: r.source.partition for r in accepted}
        )
        linked = time.perf_counter()
        _, logged = await asyncio.gather(self._produce_and_wait(records), self._write_changelog(state_records))
        acked = time.perf_counter()
        positions = logged.after if state_records else None
        # A fenced partition's part is not applied (its events are not acked either: the agent).
        write = view.writer(result.update, positions, skip=logged.fenced) if result.update else None

        async def store_then_ack() -> None:
            if write is not None:
                await asyncio.to_thread(write)
            self._batch_done(events, records, result, started, linked, acked, time.perf_counter())
            on_stored(events)

        self._pending = asyncio.ensure_future(store_then_ack())
        return result

    def on_store_failure(self, callback: Callable[[BaseException], None]) -> None:
        """Call `callback(exc)` if the store write now running fails (no later batch may come to see it)."""
        pending = self._pending
        if pending is None:
            return

        def done(fut: asyncio.Future[None]) -> None:
            if not fut.cancelled() and fut.exception() is not None:
                callback(fut.exception())  # type: ignore[arg-type]

        pending.add_done_callback(done)

    def _batch_done(
        self,
        events: Sequence[EventT[Any]],
        records: Sequence[OutboundRecord],
        result: BatchResult,
        started: float,
        linked: float,
        acked: float,
        stored: float,
    ) -> None:
        if self._recorder is not None:
            self._recorder.batch_done(events, records, stored - started, result)
        c = self.counters
        c.batches += 1
        c.submissions += len(events)
        c.members += result.members_linked
        c.stale += result.stale
        log.info(
            "batch: %d records, %d families, %d members linked, %d stale, %d outputs; "
            "decode+link %.3f s, produce+acks %.3f s, store %.3f s",
            len(events),
            result.families_linked,
            result.members_linked,
            result.stale,
            len(records),
            linked - started,
            acked - linked,
            stored - acked,
        )

    def _changelog_records(
        self, result: BatchResult, view: BatchStore, partitions: Mapping[str, int]
    ) -> dict[int, list[tuple[bytes, bytes]]]:
        """Each changed family's state after the batch, for the changelog partition of its source partition."""
        if self._changelog is None or not result.update.families:
            return {}
        out: dict[int, list[tuple[bytes, bytes]]] = {}
        for r in changelog.family_records(result.update, view.family_minted, view.family_decisions):
            out.setdefault(partitions[r.family_key], []).append((r.family_key.encode(), changelog.encode(r)))
        return out

    async def _write_changelog(self, records: Mapping[int, Sequence[tuple[bytes, bytes]]]) -> ChangelogWrite:
        if not records:
            return ChangelogWrite({})
        if self._writer is None:
            if self._send is None or self._changelog is None:
                raise RuntimeError("the handler has no sender: call bind_sender() first")
            self._writer = SendWriter(self._changelog, self._send)
        return await self._writer.write(records)

    async def _produce_and_wait(self, records: Sequence[OutboundRecord]) -> list[Any]:
        """Send every record, then wait for every acknowledgement; returns them (record metadata) in order."""
        if self._send is None:
            raise RuntimeError("the handler has no sender: call bind_sender() first")
        pending = [await self._send(rec) for rec in records]
        return list(await asyncio.gather(*pending)) if pending else []


class StoreGate(asyncio.Lock):
    """The agents' lock (one engine and link store for both agents). Taking it also waits for the
    link-store write the last submissions batch left running, so a change batch or a revocation sees
    the store complete; the submissions agent takes it with `for_batch()`, which does not wait, and
    waits for that write itself once its own batch is linked."""

    def __init__(self, handler: SubmissionHandler) -> None:
        super().__init__()
        self._handler = handler

    async def acquire(self) -> Literal[True]:
        await super().acquire()
        try:
            await self._handler.settle()
        except BaseException:
            self.release()
            raise
        return True

    @contextlib.asynccontextmanager
    async def for_batch(self) -> AsyncIterator[None]:
        """The lock without waiting for the previous batch's store write."""
        await super().acquire()
        try:
            yield
        finally:
            self.release()


def linker_stamper(settings: LinkerSettings) -> EventStamper:
    """The CloudEvents headers of every topic the linker writes (names from the settings)."""
    kinds = {
        settings.members_topic: ce.MEMBER,
        settings.families_topic: ce.FAMILY,
        settings.review_topic: ce.REVIEW_TASK,
        settings.updates_topic: ce.UPDATE,
        settings.dlq_topic: ce.DEAD_LETTER,
    }
    if settings.feedback_topic:
        kinds[settings.feedback_topic] = ce.FIELD_FEEDBACK
    return EventStamper(kinds, ce.LINKER_SOURCE)


def build_app(
    settings: LinkerSettings,
    *,
    linker: MemberLinker,
    village_crosswalk: Mapping[str, str] | None = None,
    recorder: BatchRecorder | None = None,
) -> tuple[LinkerApp, SubmissionHandler]:
    """The composition root: a configured faust app with the linker agent, and its handler (for tests)."""
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    reader = None
    writer: KafkaChangelogWriter | None = None
    if settings.changelog_topic:
        security = settings.kafka_python_security()
        reader = KafkaChangelogReader(settings.bootstrap, settings.changelog_topic, security=security)
        writer = KafkaChangelogWriter(
            settings.bootstrap, settings.changelog_topic, settings.app_id, security=settings.aiokafka_security()
        )
    store = PartitionedLinkStore(settings.link_store_path, changelog=reader)
    ids = PersonIds(settings.person_id_key.get_secret_value().encode("utf-8"))
    topics = OutputTopics(
        settings.members_topic, settings.families_topic, settings.review_topic, settings.feedback_topic or None
    )
    pipeline = SubmissionLinker(
        linker,
        ids,
        topics,
        max_members_per_call=settings.batch_max_members,
        village_crosswalk=village_crosswalk,
        rules=AdmissionRules(frozenset(settings.supervisor_teams), settings.max_revision_step),
    )
    handler = SubmissionHandler(settings, pipeline, store, recorder)
    app = LinkerApp(
        settings.app_id,
        broker=settings.broker_url,
        broker_credentials=settings.faust_credentials(),
        store=settings.table_store,
        processing_guarantee="at_least_once",
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
        # Topics are provisioned from the catalogue (`regsosek topics create`), never by the service.
        topic_allow_declare=False,
        topic_disable_leader=True,
        web_enabled=False,
        autodiscover=False,
        datadir=str(settings.state_dir / "faust"),
        broker_commit_every=settings.batch_max_members,
        broker_commit_interval=1.0,
        # A batch produces thousands of small records at once: let them share requests.
        producer_linger=0.005,
        producer_max_batch_size=262_144,
        # Members follow their family's partition on every topic (the catalogue's co-partitioning).
        producer_partitioner=producer_partitioner,
    )
    # Bytes in, bytes out: the contracts decode and encode, faust only moves the bytes.
    source = app.topic(settings.submissions_topic, key_serializer="raw", value_serializer="raw")

    stamp = linker_stamper(settings)

    async def send(rec: OutboundRecord) -> Awaitable[Any]:
        if rec.topic == settings.changelog_topic:
            # Internal state, not an event: no CloudEvents headers; the broker's time; its own partition.
            return await app.producer.send(rec.topic, rec.key, rec.value, rec.partition, None, None)
        # Straight to the producer: faust's Topic.send adds per-record serialisation and bookkeeping
        # (about half the batch time at 4,700 outputs per batch), and may defer sends to commit time.
        # CloudEvents headers and the event time as the record's timestamp (services.kafka.events).
        headers, ts = stamp(rec.topic, rec.key, rec.value, rec.event_time)
        return await app.producer.send(rec.topic, rec.key, rec.value, None, faust_timestamp(ts), headers)

    handler.bind_sender(send)
    if writer is not None:
        handler.bind_changelog(writer)

    def fenced() -> frozenset[int]:
        """Partitions whose changelog write was fenced: another instance owns them now."""
        return writer.fenced() if writer is not None else frozenset()

    def owned() -> set[int]:
        assigned = {tp.partition for tp in app.consumer.assignment() if tp.topic == settings.submissions_topic}
        return assigned - fenced()

    handler.bind_ownership(owned)
    max_messages, within = settings.batch_max_members, settings.batch_wait_seconds
    # One engine and link store for both agents: their batches take turns (services/linker/updates).
    engine_lock = StoreGate(handler)
    hold_shard = master_shard_holder(settings, linker)

    def topic_partitions() -> int | None:
        """The submissions topic's partition count in the consumer's metadata (None: not known yet)."""
        count = app.consumer.topic_partitions(settings.submissions_topic)
        return int(count) if count else None

    if hold_shard is not None:

        @app.on_partitions_assigned.connect  # type: ignore[arg-type]
        async def hold_master_rows(sender: Any, assigned: set[TP], **_: Any) -> None:
            # the districts of newly assigned partitions join the engine before their first batch; those
            # of partitions no longer assigned (revoked, their batches done) leave it
            partitions = {tp.partition for tp in assigned if tp.topic == settings.submissions_topic}
            async with engine_lock:
                added = await asyncio.to_thread(partial(hold_shard, only=True), partitions, topic_partitions())
            if added:
                log.info("master shard: %d rows added for partitions %s", added, sorted(partitions))

    progress = SubmissionsProgress()
    updates: MasterUpdates | None = None
    if settings.updates_enabled:
        updates = install_updates(
            app,
            settings,
            linker=linker,
            store=store,
            ids=ids,
            send=send,
            lock=engine_lock,
            progress=progress,
            recorder=recorder,
            changelog_writer=writer,
        )
    decisions: ReviewDecisions | None = None
    if settings.decisions_enabled:
        decisions = install_decisions(
            app,
            settings,
            linker=linker,
            store=store,
            ids=ids,
            send=send,
            lock=engine_lock,
            progress=progress,
            changelog_writer=writer,
            excluded=fenced,
        )

    if reader is not None:
        install_standby(app, settings, store, reader.partition_count)

    if writer is not None:
        fenced_total = recorder.metrics.changelog_fenced if recorder is not None else None

        @app.on_partitions_assigned.connect  # type: ignore[arg-type]
        async def fence_previous_owners(sender: Any, assigned: set[TP], **_: Any) -> None:
            # Before any file of these partitions is restored: their producers' new epochs fence every
            # older owner's producer (an open transaction of theirs is aborted, never read).
            await writer.acquire({tp.partition for tp in assigned if tp.topic == settings.submissions_topic})

        def drop_fenced(partition: int) -> None:
            # Positions and counts only (no record content). Called inside the write, before the batch
            # applies anything: the batch's part of this partition is then skipped, its events not acked.
            log.error(
                "changelog p%d: fenced (another instance took the partition over); its batch is left "
                "to the new owner, its link-store file closed, its records not taken until it is "
                "assigned here again",
                partition,
            )
            if fenced_total is not None:
                fenced_total.inc()
            if updates is not None:
                updates.released([partition])
            if decisions is not None:
                decisions.handler.forget([partition])
            store.release([partition])

        writer.on_fenced = drop_fenced

    if recorder is not None:
        restored = recorder.metrics.changelog_restored
        store.on_restored = lambda by, n: restored.labels(by=by).inc(n)
        app.strict_consumer.on_reread = recorder.metrics.offsets_reread.inc
        app.sensors.add(KafkaClientSensor(recorder.metrics, owned))  # commits and rebalances
        recorder.bind_highwater(lambda topic, partition: app.consumer.highwater(TP(topic, partition)))

        async def refresh_consumer_lag() -> None:
            # Keeps the lag gauge moving while no batch finishes (what the LinkingStalled alert needs).
            recorder.refresh_lag()

        app.timer(5.0)(refresh_consumer_lag)

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def release_link_store(sender: Any, revoked: set[TP], **_: Any) -> None:
        # faust calls this after the in-flight batches are acked; the next owner may open the files.
        released = sorted({tp.partition for tp in revoked if tp.topic == settings.submissions_topic})
        async with engine_lock:  # not while a change batch reads the files
            if updates is not None:
                updates.released(released)
            if decisions is not None:
                decisions.handler.forget(released)
            await asyncio.to_thread(store.release, released)
        if writer is not None:
            await writer.release(released)
        if released:
            log.info("link store: released partitions %s", released)

    def _ack(batch: Sequence[EventT[Any]], handled: Sequence[EventT[Any]]) -> None:
        skip = fenced()
        consumer = app.strict_consumer
        done = {id(event) for event in handled}
        for event in batch:
            if event.message.partition in skip:
                # Given up, never acked: its offset stays uncommitted (the new owner re-processes it),
                # and faust's next rebalance does not wait for it to be acked.
                consumer.unacked.discard(event.message)
                continue
            if id(event) in done:
                consumer.processed(event.message)  # what the commit may pass (strict_commit.py)
            # A record of a partition revoked before its batch ran is acked (faust's rebalance waits
            # for it) but not processed: no commit passes it.
            event.ack()

    def _crash_later(exc: BaseException) -> None:
        # A store write that failed after its batch returned: nothing acks those events; stop the worker.
        log.error("link-store write failed (%s); stopping for re-delivery", describe_failure(exc))
        asyncio.ensure_future(app.crash(exc))

    @app.agent(source, name="link-submissions")
    async def link_submissions(stream: Any) -> None:
        async for events in stream.take_events(max_messages, within=within):
            try:
                # One more reference per event: take_events acks them when we ask for the next batch,
                # but the offsets may be committed only once this batch's store write is durable.
                for event in events:
                    event.message.incref()
                # Records faust skipped before this batch are read again (strict_commit.py).
                await app.strict_consumer.delivered([e.message for e in events])
                if updates is not None:
                    # Its link-store files must hold exactly this instance's master changes first.
                    await updates.before_submissions({e.message.partition for e in events})
                if decisions is not None:
                    # ... and every review decision this instance's reader has passed (a file restored
                    # after another instance owned it may have missed some: decision_wiring.py).
                    await decisions.before_submissions({e.message.partition for e in events})
                async with engine_lock.for_batch():
                    if hold_shard is not None:  # a partition whose assignment callback has not run yet
                        await asyncio.to_thread(hold_shard, {e.message.partition for e in events}, topic_partitions())
                    await handler.handle_pipelined(events, on_stored=partial(_ack, events))
                    if len(events) >= max_messages:
                        # A full batch means a backlog: throughput, not latency. Letting the write
                        # overlap the next batch's linking only made the threads compete for the GIL.
                        await handler.settle()
                handler.on_store_failure(_crash_later)
                progress.handled(events)
            except Exception as exc:
                # The cause (disk full, read-only, locked: services/linker/storage_errors.py) or the type
                # only: an exception's text may quote a record.
                log.error("linker batch failed (%s); stopping for re-delivery", describe_failure(exc))
                await app.crash(exc)
                raise

    return app, handler
