"""Every file of a generated synthetic world satisfies the contracts: the generator and the contracts
agree on docs/data-model.md. Noise must surface as quality flags, never as rejected records."""

from __future__ import annotations

from collections import Counter

import pyarrow.parquet as pq
import pytest

from contracts.identity import QualityFlag
from contracts.population import POPULATION_RECORD_ADAPTER
from contracts.sectoral import BpjsRecord, DtksRecord
from contracts.submission import FAMILY_SUBMISSION_ADAPTER
from synthetic import generate_world
from synthetic.world import World


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return generate_world(tmp_path_factory.mktemp("world"), persons=3000, seed=11)


def test_every_submission_line_validates_and_keys_are_consistent(world: World) -> None:
    flags: Counter[QualityFlag] = Counter()
    keys: set[str] = set()
    lines = world.submissions.read_bytes().splitlines()
    for line in lines:
        submission = FAMILY_SUBMISSION_ADAPTER.validate_json(line)
        keys.update(submission.member_key(m) for m in submission.members)
        flags.update(flag for m in submission.members for flag in m.quality_flags)
    assert len(lines) == world.submission_count
    # The default noise profile writes placeholder dates and NIKs of other people: both are warnings.
    assert flags[QualityFlag.BIRTH_DATE_PLACEHOLDER] > 0
    assert flags[QualityFlag.NIK_BIRTH_DATE_MISMATCH] > 0
    truth = pq.read_table(world.truth, columns=["source", "member_key"]).to_pylist()
    assert {row["member_key"] for row in truth if row["source"] == "member"} <= keys


def test_master_rows_validate(world: World) -> None:
    rows = pq.read_table(world.population).to_pylist()
    records = [POPULATION_RECORD_ADAPTER.validate_python(row) for row in rows]
    assert len(records) == world.persons
    # The master's NIKs are consistent with sex and birth date by construction.
    assert not any(
        f in (QualityFlag.NIK_SEX_MISMATCH, QualityFlag.NIK_BIRTH_DATE_MISMATCH)
        for r in records
        for f in r.quality_flags
    )


@pytest.mark.parametrize("source", ["dtks", "bpjs"])
def test_sectoral_rows_validate(world: World, source: str) -> None:
    model = DtksRecord if source == "dtks" else BpjsRecord
    rows = pq.read_table(getattr(world, source)).to_pylist()
    assert len([model.model_validate(row) for row in rows]) == getattr(world, f"{source}_rows")
