"""`LinkageEngine`: real-time linkage of records to a prepared in-memory master.

Splink-style facade with stage components:
- `engine.master`  - load the master once, then `upsert` / `remove` single records;
- `engine.scoring` - candidate pairs and their per-pair scores (used by tests and the bench);
- `engine.link(batch)` - one `LinkDecision` per record.

The model's parameters come from a trained Splink model JSON; records are prepared by the caller's
`preparer` (the same normalisation the model was trained on) before encoding, so no SQL is generated
and the master is never re-scanned per call.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from linkage.engine.blocking import RowIds
from linkage.engine.decisions import (
    Band,
    BandThresholds,
    ComparisonContribution,
    Explanation,
    LinkDecision,
    match_probability,
)
from linkage.engine.errors import EngineError, MasterNotLoadedError
from linkage.engine.family import QueryFamilies, resolve_families
from linkage.engine.keys import BlockingKeys, KeyHashes
from linkage.engine.master import PreparedMaster
from linkage.engine.parallel import prepare_in_parallel
from linkage.engine.params import ModelParameters, read_model_parameters
from linkage.engine.relatives import EXPLANATION as RELATIVE_NIK_LABEL
from linkage.engine.relatives import HOUSEHOLD_EXPLANATION, RelativeNikRule, discount_pairs
from linkage.engine.scoring import PairScorer, PairScores, QueryBatch

if TYPE_CHECKING:
    from linkage.engine.shard import MasterShard
from linkage.observer import NO_OBSERVER, LinkageObserver, Source

Preparer = Callable[[pa.Table], pa.Table]
# The master column naming each person's relationship to the KK head (carried through preparation).
_RELATIONSHIP = "relationship"
Batch: TypeAlias = "pa.Table | Sequence[Mapping[str, Any]]"


def _identity(table: pa.Table) -> pa.Table:
    return table


def records_to_table(records: Sequence[Mapping[str, Any]]) -> pa.Table:
    """Records (dicts) as a table; a key missing from some records is NULL there (pyarrow's
    `from_pylist` would take the keys of the first record only)."""
    names: dict[str, None] = {}
    for record in records:
        names.update(dict.fromkeys(record))
    return pa.Table.from_pydict({name: [r.get(name) for r in records] for name in names})


@dataclass(frozen=True, slots=True)
class ScoredPairs:
    """Candidate pairs of a batch (sorted by query, then master row) and their scores."""

    query_index: RowIds
    master_rows: RowIds
    scores: PairScores


class MasterStage:
    """Loads and updates the prepared master."""

    def __init__(self, engine: LinkageEngine) -> None:
        self._engine = engine
        self._prepared: PreparedMaster | None = None
        self._shard: MasterShard | None = None

    @property
    def shard(self) -> MasterShard | None:
        """The shard this engine holds (`load_shard`), None when it holds the whole master."""
        return self._shard

    def load_shard(self, shard: MasterShard) -> None:
        """Hold only a shard of the master: `shard` loads its regions' rows now and, before each batch
        is scored, the rows of other regions the batch's region-free blocking rules find
        (`linkage.engine.shard`). Updates go through the shard (its global index follows them)."""
        self._shard = shard
        shard.attach(self._engine)
        gc.collect()
        gc.freeze()

    def drop_regions(self, regions: Iterable[object]) -> int:
        """A sharded engine holds these regions no more (`MasterShard.drop_regions`); the rows dropped."""
        if self._shard is None:
            raise EngineError("only a sharded engine (load_shard) drops regions")
        gc.unfreeze()  # the old master's objects were frozen at load: let the collector free them
        dropped = self._shard.drop_regions(regions)
        gc.collect()
        gc.freeze()
        return dropped

    def install(self, prepared: PreparedMaster) -> None:
        """Use an already built `PreparedMaster` (a shard's rows)."""
        self._prepared = prepared

    @property
    def prepared(self) -> PreparedMaster:
        """The prepared master (raises if none was loaded)."""
        if self._prepared is None:
            raise MasterNotLoadedError("load a master with engine.master.load(...) before linking")
        return self._prepared

    def load(self, table: pa.Table, *, processes: int = 1) -> None:
        """Prepare the master once: normalise (on `processes` forked workers), then encode, build the
        blocking indexes and the term-frequency counts."""
        self.load_prepared(self.prepare(table, processes=processes))

    def prepare(
        self,
        table: pa.Table,
        *,
        processes: int = 1,
        convert: Callable[[pa.Table], pa.Table] | None = None,
    ) -> pa.Table:
        """The prepared columns of master rows (`convert` first maps a source layout, e.g.
        population.parquet, to linkage records; it runs in the workers too)."""
        engine_preparer = self._engine.preparer

        def preparer(chunk: pa.Table) -> pa.Table:
            records = convert(chunk) if convert is not None else chunk
            prepared = engine_preparer(records)
            # Dukcapil's relationship (who heads each KK) rides along for the family tie-break
            for source in (records, chunk):
                if (
                    _RELATIONSHIP in source.column_names
                    and _RELATIONSHIP not in prepared.column_names
                    and source.num_rows == prepared.num_rows
                ):
                    prepared = prepared.append_column(_RELATIONSHIP, source.column(_RELATIONSHIP))
            return prepared

        return prepare_in_parallel(preparer, table, processes)

    def load_prepared(self, prepared: pa.Table) -> None:
        """Load a master whose columns are already prepared (e.g. a cached prepared Parquet file)."""
        self._prepared = PreparedMaster(self._engine.parameters, prepared, self._engine.id_column)
        # Move the master's millions of long-lived objects out of the collector's reach: full
        # collections no longer walk them (no latency spikes), and forked workers do not write to
        # their pages (copy-on-write sharing stays intact).
        gc.collect()
        gc.freeze()

    def upsert(self, record: Mapping[str, Any]) -> KeyHashes:
        """Insert or replace one master record (raw; it is prepared like the master); returns its
        blocking-key hashes (`LinkageEngine.master_keys`)."""
        table = self._engine.preparer(records_to_table([record]))
        if self._shard is not None:
            self._shard.upsert(table)
        else:
            self.prepared.upsert(table.to_pylist()[0])
        return self._engine.keys.of_master(table)[0]

    def remove(self, record_id: str) -> bool:
        """Remove one master record; False when the id is unknown."""
        if self._shard is not None:
            return self._shard.remove(record_id)
        return self.prepared.remove(record_id)

    def __len__(self) -> int:
        return 0 if self._prepared is None else len(self._prepared)


class ScoringStage:
    """Candidate generation and pair scoring for a prepared query batch."""

    def __init__(self, engine: LinkageEngine) -> None:
        self._engine = engine

    def prepare(self, batch: Batch) -> QueryBatch:
        """Normalise and wrap a batch of raw records for scoring."""
        table = batch if isinstance(batch, pa.Table) else records_to_table(batch)
        prepared = self._engine.preparer(table)
        shard = self._engine.master.shard
        if shard is not None:  # before any encoding: rows found in other regions join the master first
            shard.ensure(prepared)
        return QueryBatch(prepared, self._engine.master.prepared)

    def candidates(self, batch: QueryBatch) -> tuple[RowIds, RowIds]:
        """Union of every blocking rule's pairs, deduplicated, sorted by (query, master row)."""
        master = self._engine.master.prepared
        q_parts: list[RowIds] = []
        r_parts: list[RowIds] = []
        for rule, index in zip(master.params.blocking_rules, master.rules, strict=True):
            q, r = index.lookup([batch.codes(left, right) for left, right in rule])
            keep = master.alive(r)
            for left, right in rule:  # drop hash collisions
                keep &= batch.codes(left, right)[q] == master.columns[right].codes[r]
            q_parts.append(q[keep])
            r_parts.append(r[keep])
        if not q_parts:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        stride = np.int64(master.row_count)
        pair_keys = np.unique(np.concatenate(q_parts) * stride + np.concatenate(r_parts))
        q, r = pair_keys // stride, pair_keys % stride
        ranks = master.ranks
        if ranks is not None:  # a shard: order each query's pairs as the whole master's rows are
            order = np.lexsort((ranks[r], q))
            q, r = q[order], r[order]
        return q, r

    def score(self, batch: Batch | QueryBatch) -> ScoredPairs:
        """Score all candidate pairs of a batch."""
        query = batch if isinstance(batch, QueryBatch) else self.prepare(batch)
        q, r = self.candidates(query)
        return ScoredPairs(q, r, PairScorer(self._engine.master.prepared, query, q, r).score())


class LinkageEngine:
    """Links records to the master with a trained Splink model's exact weights."""

    def __init__(
        self,
        parameters: ModelParameters,
        thresholds: BandThresholds,
        *,
        preparer: Preparer = _identity,
        id_column: str = "record_id",
    ) -> None:
        self.parameters = parameters
        self.thresholds = thresholds
        self.preparer = preparer
        self.id_column = id_column
        self.master = MasterStage(self)
        self.scoring = ScoringStage(self)
        self.keys = BlockingKeys(parameters.blocking_rules)
        self._relatives = RelativeNikRule.from_parameters(parameters)
        self._observer: LinkageObserver = NO_OBSERVER
        self._observed_source: Source = "dukcapil"

    def observe(self, observer: LinkageObserver, *, source: Source = "dukcapil") -> None:
        """Report every `link` call to `observer`: its size and duration, and each record's decision
        (band, probability, candidate pairs) as linked against `source` (the master's database)."""
        self._observer, self._observed_source = observer, source

    @classmethod
    def from_model_json(
        cls,
        model: Mapping[str, Any] | str | Path,
        thresholds: BandThresholds,
        *,
        preparer: Preparer = _identity,
        id_column: str = "record_id",
    ) -> LinkageEngine:
        """Build an engine from a Splink model JSON (path or dict)."""
        return cls(read_model_parameters(model), thresholds, preparer=preparer, id_column=id_column)

    @classmethod
    def from_artefact(
        cls, folder: str | Path, *, preparer: Preparer = _identity, id_column: str = "record_id"
    ) -> LinkageEngine:
        """Build an engine from a model artefact folder (`model.json` + `metadata.json` with
        `thresholds`), or from the path of its `model.json`."""
        import json

        path = Path(folder)
        folder_path = path if path.is_dir() else path.parent
        try:
            metadata = json.loads((folder_path / "metadata.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise EngineError(f"cannot read the model metadata in {folder_path}: {e}") from e
        engine = cls.from_model_json(
            folder_path / "model.json",
            BandThresholds.from_metadata(metadata),
            preparer=preparer,
            id_column=id_column,
        )
        # The model JSON was rendered from the spec chosen at training (metadata `spec`): they must agree.
        chosen = (metadata.get("spec") or {}).get("comparisons")
        scored = [c.name for c in engine.parameters.comparisons]
        if chosen is not None and list(chosen) != scored:
            raise EngineError(
                f"model.json compares {', '.join(scored)} but metadata.json's spec chose {', '.join(chosen)}"
            )
        return engine

    def link(self, batch: Batch) -> list[LinkDecision]:
        """Best master candidate, probability, runner-up, band and explanation for each record."""
        return self._link(batch)[0]

    def link_with_keys(self, batch: Batch) -> tuple[list[LinkDecision], list[KeyHashes]]:
        """`link`, plus each record's blocking-key hashes (`query_keys`) from the same preparation."""
        decisions, query = self._link(batch)
        return decisions, ([] if query is None else self.keys.of_queries(query.prepared))

    def query_keys(self, batch: Batch) -> list[KeyHashes]:
        """Blocking-key hashes of raw query records: one per blocking rule whose columns are all
        non-NULL. A query and a master record (`master_keys`) share a hash exactly when some rule
        pairs them (up to 64-bit collisions); the hashes depend on the values only, so they can be
        stored and compared with master records added later (see `linkage.engine.keys`)."""
        table = batch if isinstance(batch, pa.Table) else records_to_table(batch)
        return self.keys.of_queries(self.preparer(table)) if table.num_rows else []

    def master_keys(self, record: Mapping[str, Any]) -> KeyHashes:
        """Blocking-key hashes of one raw master record (prepared as `master.upsert` does)."""
        return self.keys.of_master(self.preparer(records_to_table([record])))[0]

    def _link(self, batch: Batch) -> tuple[list[LinkDecision], QueryBatch | None]:
        if len(batch) == 0:
            return [], None
        started = time.perf_counter()
        table = batch if isinstance(batch, pa.Table) else records_to_table(batch)
        query = self.scoring.prepare(table)
        scored = self.scoring.score(query)
        ids = [str(v) for v in query.values(self.id_column)]
        decisions = self._decide(ids, scored, QueryFamilies.of(table, self.id_column))
        if self._observer is not NO_OBSERVER:
            self._report(decisions, time.perf_counter() - started)
        return decisions, query

    def _report(self, decisions: list[LinkDecision], seconds: float) -> None:
        observer, source = self._observer, self._observed_source
        observer.batch_linked(len(decisions), seconds)
        for d in decisions:
            observer.record_decided(source, d.band.value, d.match_probability, d.candidate_count)

    def _decide(self, ids: list[str], scored: ScoredPairs, families: QueryFamilies | None) -> list[LinkDecision]:
        n = len(ids)
        q, totals = scored.query_index, scored.scores.totals
        # a relative's NIK (linkage.engine.relatives): resolve those queries without the NIK's weight;
        # a pair whose name and birth date disagree is never auto-linked
        discounted = discount_pairs(self._relatives, q, scored.scores.levels, scored.scores.weights, totals)
        no_pairs = np.zeros(len(q), dtype=np.bool_)
        affected, contradicted = no_pairs, no_pairs
        if discounted is not None:
            totals, affected, contradicted = discounted
        counts = np.bincount(q, minlength=n)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        has = counts > 0
        best = np.full(n, -1, dtype=np.int64)
        runner: npt.NDArray[np.float64] = np.full(n, np.nan)
        if len(q):
            group_max = np.maximum.reduceat(totals, starts[has])
            is_max = totals == np.repeat(group_max, counts[has])
            # first maximal pair per query: lowest master row wins a tie (pairs are sorted by row)
            first = np.flatnonzero(is_max)
            uniq_q, first_pos = np.unique(q[first], return_index=True)
            best[uniq_q] = first[first_pos]
            rest = totals.copy()
            rest[best[has]] = -np.inf
            second = np.maximum.reduceat(rest, starts[has])
            runner[has] = np.where(np.isneginf(second), np.nan, second)
        master = self.master.prepared
        if families is not None and len(q):
            # one master person per member of a submission, close candidates ordered by the head's name
            pairs = (q, scored.master_rows, totals)
            resolve_families(families, ids, pairs, master.families, best, runner, master.ranks)
        params = self.parameters
        prior = params.prior_match_weight
        names = [c.name for c in params.comparisons]
        labels = [[level.label for level in c.levels] for c in params.comparisons]
        chosen = best[best >= 0]
        # one gather per matrix, then plain Python lists: far cheaper than numpy scalars per field
        levels_of = scored.scores.levels[:, chosen].T.tolist()
        weights_of = scored.scores.weights[:, chosen].T.tolist()
        tf_of = scored.scores.tf_adjustments[:, chosen].T.tolist()
        totals_of = totals[chosen].tolist()
        rows_of = scored.master_rows[chosen].tolist()
        affected_of = affected[chosen].tolist()
        contradicted_of = contradicted[chosen].tolist()
        nik_of = -1 if self._relatives is None else self._relatives.nik
        household_of = () if self._relatives is None else self._relatives.household
        runner_of = runner.tolist()
        counts_of = counts.tolist()
        no_match = self.thresholds.band(None)
        decisions: list[LinkDecision] = []
        k = 0
        for i, rid in enumerate(ids):
            if best[i] < 0:  # no candidate, or every candidate taken by relatives (runner-up: the best)
                runner_up = runner_of[i]
                lost = None if runner_up != runner_up else runner_up
                decisions.append(LinkDecision(rid, None, None, None, lost, counts_of[i], no_match, None))
                continue
            weight = totals_of[k]
            probability = match_probability(weight)
            contributions = tuple(
                ComparisonContribution(names[c], RELATIVE_NIK_LABEL, 0.0, 0.0)
                if c == nik_of and affected_of[k]
                else ComparisonContribution(names[c], HOUSEHOLD_EXPLANATION, 0.0, 0.0)
                if c in household_of and contradicted_of[k] and w > 0
                else ComparisonContribution(names[c], labels[c][lvl], w, tf)
                for c, (lvl, w, tf) in enumerate(zip(levels_of[k], weights_of[k], tf_of[k], strict=True))
            )
            band = self.thresholds.band(probability)
            if contradicted_of[k] and band is Band.AUTO_LINK:  # name and birth date disagree: not alone
                band = Band.REVIEW
            runner_up = runner_of[i]
            decisions.append(
                LinkDecision(
                    record_id=rid,
                    master_record_id=master.record_id(rows_of[k]),
                    match_probability=probability,
                    match_weight=weight,
                    runner_up_match_weight=None if runner_up != runner_up else runner_up,  # NaN: none
                    candidate_count=counts_of[i],
                    band=band,
                    explanation=Explanation(prior, contributions),
                )
            )
            k += 1
        return decisions
