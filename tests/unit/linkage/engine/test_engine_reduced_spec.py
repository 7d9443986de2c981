"""A spec chosen without NIK, sex or region (name and birth date only, plus the fallback blocking rules):
the engine, driven by the artefact's model, scores exactly the pairs Splink scores, with Splink's weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from engine_helpers import make_master, make_queries, prepare, splink_predict_between

from linkage.engine import LinkageEngine
from linkage.model.artefact import ModelArtefact, build_metadata, save_artefact
from linkage.spec import ModelSpec, spec_for_tables

REMOVED = ("nik", "kk_number", "sex", "village_code")


def _without(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: (None if k in REMOVED else v) for k, v in r.items()} for r in rows]


def _model(spec: ModelSpec, prior: float = 2e-4) -> dict[str, Any]:
    """The spec's Splink model with fixed m/u (as in engine_helpers.members_model)."""
    from splink import DuckDBAPI, Linker

    from linkage.normalise.prepare import PREPARED_SCHEMA

    db = DuckDBAPI(duckdb.connect())
    linker = Linker(db.register(PREPARED_SCHEMA.empty_table(), table_name="empty_reduced"), spec.render_settings())
    model: dict[str, Any] = linker.misc.save_model_to_json()
    model["probability_two_random_records_match"] = prior
    for c, comparison in enumerate(model["comparisons"]):
        levels = [lv for lv in comparison["comparison_levels"] if not lv.get("is_null_level")]
        n = len(levels)
        for i, level in enumerate(levels):
            level["m_probability"] = (n - i) ** (2 + c) / sum((n - k) ** (2 + c) for k in range(n))
            level["u_probability"] = (i + 1) ** (3 + c) / sum((k + 1) ** (3 + c) for k in range(n))
    return model


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = make_master(20_000, seed=21)
    master = prepare(_without(base))
    queries = prepare(_without(make_queries(base, 4_000, seed=22)))
    spec = spec_for_tables("dtks", master, queries)
    model = _model(spec)
    folder = save_artefact(
        ModelArtefact(model, build_metadata("dtks", "0" * 64, training={}, spec=spec)),
        tmp_path_factory.mktemp("reduced"),
        charts=False,
    )
    engine = LinkageEngine.from_artefact(folder)
    engine.master.load(master)
    return {"master": master, "queries": queries, "spec": spec, "model": model, "engine": engine, "folder": folder}


def test_the_chosen_spec_is_name_and_birth_date_with_fallback_blocking(world: dict[str, Any]) -> None:
    spec: ModelSpec = world["spec"]
    assert spec.names == ("name", "birth_date")
    assert ("birth_date",) in spec.blocking_rules and all("nik" not in r for r in spec.blocking_rules)
    # the engine was built from the artefact: its comparisons and rules are the spec's
    params = world["engine"].parameters
    assert tuple(c.name for c in params.comparisons) == spec.names
    assert len(params.blocking_rules) == len(spec.blocking_rules)


def test_engine_weights_equal_splink_on_the_reduced_spec(world: dict[str, Any]) -> None:
    ref: pa.Table = splink_predict_between(world["model"], world["master"], world["queries"])
    splink = {
        (q, m): w
        for q, m, w in zip(
            *(ref.column(c).to_pylist() for c in ("record_id_l", "record_id_r", "match_weight")), strict=True
        )
    }
    engine: LinkageEngine = world["engine"]
    scored = engine.scoring.score(world["queries"])
    ids = world["queries"].column("record_id").to_pylist()
    master = engine.master.prepared
    ours = {
        (ids[q], master.record_id(r)): w
        for q, r, w in zip(
            scored.query_index.tolist(), scored.master_rows.tolist(), scored.scores.totals.tolist(), strict=True
        )
    }
    assert len(splink) > 10_000
    assert set(ours) == set(splink)
    assert max(abs(ours[k] - w) for k, w in splink.items()) < 1e-6


def test_artefact_folder_records_the_spec(world: dict[str, Any]) -> None:
    import json

    meta = json.loads((Path(world["folder"]) / "metadata.json").read_text(encoding="utf-8"))
    assert meta["spec"]["comparisons"] == ["name", "birth_date"]
    # the test master has no address lines, so the address comparison is left out too
    assert meta["spec"]["dropped"].keys() == {"nik", "sex", "village", "address"}


def test_an_artefact_whose_model_disagrees_with_its_spec_is_refused(world: dict[str, Any], tmp_path: Path) -> None:
    import json
    import shutil

    from linkage.engine import EngineError

    folder = tmp_path / "mismatch"
    shutil.copytree(world["folder"], folder)
    meta = json.loads((folder / "metadata.json").read_text(encoding="utf-8"))
    meta["spec"]["comparisons"] = ["name"]
    (folder / "metadata.json").write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(EngineError, match="model.json compares name, birth_date but metadata.json's spec chose name"):
        LinkageEngine.from_artefact(folder)
