"""`EngineMemberLinker`: the `MemberLinker` port implemented with the real `linkage.engine.LinkageEngine`.

Start-up (fail fast, once): the model artefact (Splink JSON + thresholds), the master from the world's
population.parquet through the engine's prepared-master cache (in the state directory), and two
compact lookups the outputs need but the engine does not return: the master person's KK number and
alive/dead status, and the sectoral ids (with the DTKS welfare decile, `desil`). Lookups are sorted
NumPy arrays searched by NIK (about 50 MB for a 1,000,000-person master, not a dict of Python objects).

Sectoral matches are the DTKS / BPJS rows that carry the linked master NIK (exact NIK agreement); a
probabilistic sectoral->master link table from `regsosek link` can replace this index later.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from integration.mapping import record_columns
from integration.master import MasterPerson, SectoralSource
from integration.port import MemberLink, MemberQuery, report_sectoral
from linkage.observer import NO_OBSERVER, LinkageObserver
from linkage.records import member_table
from services.linker.errors import LinkerConfigError
from services.linker.ranking import rank_review_candidates


class NikIndex:
    """Values per NIK in sorted arrays: `get(nik)` is a binary search."""

    def __init__(self, niks: pa.Array | pa.ChunkedArray, **columns: pa.Array | pa.ChunkedArray) -> None:
        keep = pc.is_valid(niks)
        niks = pc.filter(niks, keep)
        order = pc.sort_indices(niks)
        self._niks = np.asarray(pc.take(niks, order).to_numpy(zero_copy_only=False), dtype="S16")
        self._columns = {
            name: pc.take(pc.filter(col, keep), order).to_numpy(zero_copy_only=False) for name, col in columns.items()
        }

    def has(self, nik: str) -> bool:
        """Whether a row with this NIK exists."""
        key = nik.encode("ascii", errors="replace")
        pos = int(np.searchsorted(self._niks, key))
        return pos < len(self._niks) and bool(self._niks[pos] == key)

    def get(self, nik: str, column: str) -> Any:
        """The value of `column` for the first row with this NIK, or None."""
        key = nik.encode("ascii")
        pos = int(np.searchsorted(self._niks, key))
        if pos < len(self._niks) and self._niks[pos] == key:
            value = self._columns[column][pos]
            return None if value is None else value
        return None


class EngineMemberLinker:
    """Links members with the real-time engine; one `MemberLink` per query, in order."""

    def __init__(
        self, engine: Any, version: str, master: NikIndex, dtks: NikIndex | None, bpjs: NikIndex | None
    ) -> None:
        self._engine = engine
        self._version = version
        self._master = master
        self._dtks = dtks
        self._bpjs = bpjs
        # Master updates (services/linker/updates): newer facts than the sorted start-up lookups.
        self._updated: dict[str, tuple[str, bool]] = {}
        self._sectoral_updated: dict[tuple[str, str], tuple[str, int | None]] = {}
        self._observer: LinkageObserver = NO_OBSERVER
        # Master sharding (`hold_partitions`): the master districts (Kemendagri) of each BPS district.
        self._districts: dict[str, str] = {}
        self._held_partitions: set[int] = set()
        self.rows_dropped = 0  # master rows dropped with revoked partitions (`hold_partitions(only=True)`)

    @property
    def sharded(self) -> bool:
        """Whether the engine holds a shard of the master (REGSOSEK_LINKER_MASTER_SHARDING)."""
        return self._engine.master.shard is not None

    def use_district_crosswalk(self, districts: dict[str, str]) -> None:
        """BPS district (7 digits, the family key's start) -> the master's district code (Kemendagri)."""
        self._districts = dict(districts)

    def hold_partitions(self, partitions: Collection[int], partition_count: int, *, only: bool = False) -> int:
        """Hold the master rows of every district the submissions `partitions` (of `partition_count`)
        cover, before any of their records is linked; the rows added (0 when all were held).

        `only`: `partitions` is the instance's whole assignment (after a rebalance): the districts of
        partitions held before and not in it are dropped first (`rows_dropped` counts them), so an
        instance that once owned many partitions does not keep them all. Call it when no batch of the
        revoked partitions runs (the engine lock, after the revocation); a later assignment of them
        loads their districts again."""
        shard = self._engine.master.shard
        if shard is None:
            return 0
        if only:
            revoked = self._held_partitions - set(partitions)
            if revoked:
                self.rows_dropped += int(self._engine.master.drop_regions(self._regions_of(revoked, partition_count)))
                self._held_partitions -= revoked
        new = set(partitions) - self._held_partitions
        if not new:
            return 0
        added = int(shard.add_regions(self._regions_of(new, partition_count)))
        self._held_partitions |= new
        return added

    def shard_stats(self) -> dict[str, float] | None:
        """The master shard's figures for metrics (None without master sharding): rows and districts
        held, global-index lookups, rows fetched through it, districts loaded on demand, rows dropped
        with revoked partitions, and the seconds spent looking up and fetching."""
        shard = self._engine.master.shard
        if shard is None:
            return None
        stats = shard.stats
        return {
            "rows_held": float(len(self._engine.master)),
            "districts": float(len(shard.regions)),
            "lookups": float(stats.lookups),
            "rows_fetched": float(stats.fetched),
            "fetched_rows_dropped": float(stats.fetched_dropped),
            "districts_on_demand": float(stats.regions_on_demand),
            "rows_dropped": float(self.rows_dropped),
            "lookup_seconds": stats.lookup_seconds,
            "fetch_seconds": stats.fetch_seconds,
        }

    def _regions_of(self, partitions: Collection[int], partition_count: int) -> list[str]:
        """The master districts of the submissions `partitions`."""
        from contracts.partitioning import partition_for

        wanted = set(partitions)
        return [
            master
            for bps, master in sorted(self._districts.items())
            if partition_for(bps.encode("ascii"), partition_count) in wanted
        ]

    @classmethod
    def from_files(
        cls,
        world_dir: Path,
        model_path: Path,
        *,
        cache_dir: Path | None = None,
        sharded: bool = False,
        fetched_rows_max: int | None = None,
    ) -> EngineMemberLinker:
        """Load the model artefact and the world's master (via the prepared cache); raises with a remedy.

        `sharded`: hold no master rows yet, only the global index (`hold_partitions` then adds the rows
        of the districts of the submissions partitions this instance is assigned)."""
        from linkage.comparisons import SPEC_VERSION
        from linkage.engine import LinkageEngine
        from linkage.engine.cache import load_master_cached, load_shard_cached
        from linkage.model.artefact import load_artefact
        from linkage.normalise.prepare import prepare_table
        from linkage.records import population_records

        population = world_dir / "population.parquet"
        if not population.is_file():
            raise LinkerConfigError(f"{population} is missing: generate a world with `regsosek generate`")
        try:
            artefact = load_artefact(model_path)
        except Exception as exc:  # the artefact module's own error type, plus OSError
            raise LinkerConfigError(f"cannot load the model artefact {model_path}: {exc}") from exc
        engine = LinkageEngine.from_artefact(model_path, preparer=prepare_table)
        if sharded:
            load_shard_cached(
                engine,
                population,
                [],
                cache_dir=cache_dir or world_dir / ".prepared",
                version=f"spec-{SPEC_VERSION}",
                convert=population_records,
                fetched_rows_max=fetched_rows_max,
            )
        else:
            load_master_cached(
                engine,
                population,
                cache_dir=cache_dir or world_dir / ".prepared",
                version=f"spec-{SPEC_VERSION}",
                convert=population_records,
                processes=1,
            )
        meta = artefact.metadata
        version = (
            f"{meta.get('source', 'members')}-{str(meta.get('created_at', ''))}"
            f"-{str(meta.get('training_data_sha256', ''))[:8]}"
        )
        people = pq.read_table(population, columns=["nik", "kk_number", "status"])
        master = NikIndex(people["nik"], kk=people["kk_number"], dead=pc.equal(people["status"], "dead"))
        linker = cls(
            engine,
            version,
            master,
            _sectoral(world_dir / "dtks.parquet", "id_dtks"),
            _sectoral(world_dir / "bpjs.parquet", "noka"),
        )
        crosswalk = world_dir / "crosswalk.parquet"
        if sharded and crosswalk.is_file():
            rows = pq.read_table(crosswalk).to_pylist()
            linker.use_district_crosswalk(
                {str(r["bps_code"]): str(r["kemendagri_code"]) for r in rows if r.get("level") == "district"}
            )
        return linker

    @property
    def model_version(self) -> str:
        return self._version

    def attach_observer(self, observer: LinkageObserver) -> None:
        """Report every `link` call to `observer` (metrics), whoever calls it (submissions or updates):
        the engine reports the call and each Dukcapil decision with its candidate count, this object
        the DTKS and BPJS decisions it adds."""
        self._engine.observe(observer)
        self._observer = observer

    def upsert_master(self, person: MasterPerson) -> None:
        """Insert or replace one master person in the engine (no reload) and in the KK/status lookup."""
        self._engine.master.upsert(_master_record(person))
        self._updated[person.nik] = (person.kk_number, person.deceased)

    def master_keys(self, person: MasterPerson) -> tuple[int, ...]:
        """The blocking-key hashes of a master person (shared with a member's `MemberLink.blocking_keys`
        exactly when one of the model's blocking rules pairs the two)."""
        keys: tuple[int, ...] = self._engine.master_keys(_master_record(person))
        return keys

    def set_sectoral(self, source: SectoralSource, nik: str, sectoral_id: str, decile: int | None = None) -> None:
        """Record a DTKS (with its welfare decile) or BPJS id for a master NIK."""
        self._sectoral_updated[(source, nik)] = (sectoral_id, decile)

    def _fact(self, nik: str, column: str) -> Any:
        if nik in self._updated:
            kk, dead = self._updated[nik]
            return kk if column == "kk" else dead
        return self._master.get(nik, column)

    def _known(self, nik: str) -> bool:
        """Whether `nik` is a master NIK (the start-up lookup, or added by a master update)."""
        return nik in self._updated or self._master.has(nik)

    def _sectoral_id(self, source: str, nik: str) -> Any:
        if (source, nik) in self._sectoral_updated:
            return self._sectoral_updated[(source, nik)][0]
        index = self._dtks if source == "dtks" else self._bpjs
        return index.get(nik, "id") if index else None

    def _dtks_decile(self, nik: str) -> int | None:
        """The welfare decile of the DTKS row the NIK's DTKS id comes from (None: no row, or no decile)."""
        if ("dtks", nik) in self._sectoral_updated:
            return self._sectoral_updated[("dtks", nik)][1]
        value = self._dtks.get(nik, "decile") if self._dtks else None
        return None if value is None or value != value else int(value)  # value != value: a NaN (null)

    def link(self, members: Sequence[MemberQuery]) -> list[MemberLink]:
        """Score the batch in one engine call and add the master facts of each best candidate."""
        if not members:
            return []
        table = member_table(record_columns(members))
        # the keys come from the same preparation as the decisions (a hash pass, no second prepare)
        decisions, keys = self._engine.link_with_keys(table)
        links = []
        for query, d, query_keys in zip(members, decisions, keys, strict=True):
            nik = d.master_record_id
            explanation = {c.comparison: c.match_weight for c in d.explanation.contributions} if d.explanation else {}
            links.append(
                MemberLink(
                    record_id=query.record_id,
                    band=d.band.value,
                    master_nik=nik,
                    probability=d.match_probability,
                    match_weight=d.match_weight,
                    runner_up_weight=d.runner_up_match_weight,
                    explanation=explanation,
                    master_kk_number=self._fact(nik, "kk") if nik else None,
                    master_deceased=bool(self._fact(nik, "dead")) if nik else False,
                    dtks_id=self._sectoral_id("dtks", nik) if nik else None,
                    bpjs_id=self._sectoral_id("bpjs", nik) if nik else None,
                    dtks_decile=self._dtks_decile(nik) if nik else None,
                    blocking_keys=query_keys,
                    query_nik_in_master=self._known(query.nik) if query.nik else None,
                )
            )
        ranked = rank_review_candidates(self._engine, table, links)
        for index, candidates in ranked.items():
            links[index] = replace(links[index], candidates=candidates)
        if self._observer is not NO_OBSERVER:
            report_sectoral(self._observer, links)
        return links


def _sectoral(path: Path, id_column: str) -> NikIndex | None:
    if not path.is_file():
        return None
    if id_column == "id_dtks":  # DTKS rows also carry the welfare decile the outputs pass on
        table = pq.read_table(path, columns=["nik", id_column, "desil"])
        return NikIndex(table["nik"], id=table[id_column], decile=table["desil"])
    table = pq.read_table(path, columns=["nik", id_column])
    return NikIndex(table["nik"], id=table[id_column])


def _master_record(person: MasterPerson) -> dict[str, Any]:
    """A master person as the engine's raw master record (the population file's conversion)."""
    from linkage.records import population_records

    row = {
        "nik": person.nik,
        "kk_number": person.kk_number,
        "full_name": person.full_name,
        "sex": person.sex,
        "birth_date": person.birth_date,
        "village_code": person.village_code,
        "address": person.address,
    }
    record: dict[str, Any] = population_records(pa.Table.from_pylist([row])).to_pylist()[0]
    return record
