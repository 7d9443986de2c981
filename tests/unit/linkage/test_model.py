"""Training on a small hand-made world, artefacts, bands and the m/u floors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from factories import make_master, make_records

from linkage.batch import train_artefact
from linkage.comparisons import SPEC_VERSION
from linkage.model.artefact import (
    M_FLOOR,
    U_FLOOR,
    ModelArtefact,
    ModelArtefactError,
    band_of,
    load_artefact,
    regularise,
    save_artefact,
)
from linkage.model.training import MAX_MATCHED_SHARE
from linkage.normalise import prepare_table

THRESHOLDS = {"auto_link": 0.99, "review": 0.5}


@pytest.mark.parametrize(
    ("probability", "band"),
    [
        (None, "no_match"),
        (0.0, "no_match"),
        (0.4999, "no_match"),
        (0.5, "review"),
        (0.98999, "review"),
        (0.99, "auto_link"),
        (1.0, "auto_link"),
    ],
)
def test_band_thresholds(probability: float | None, band: str) -> None:
    assert band_of(probability, THRESHOLDS) == band


def test_regularise_floors_untrained_and_zero_levels_but_not_null_levels() -> None:
    model = {
        "comparisons": [
            {
                "output_column_name": "x",
                "comparison_levels": [
                    {"sql_condition": "x_l IS NULL", "is_null_level": True},
                    {"sql_condition": "x_l = x_r", "m_probability": 0.9, "u_probability": 0.0},
                    {"sql_condition": "ELSE", "m_probability": 0.0},
                ],
            }
        ]
    }
    levels = regularise(model)["comparisons"][0]["comparison_levels"]
    assert "m_probability" not in levels[0]
    assert (levels[1]["m_probability"], levels[1]["u_probability"]) == (0.9, U_FLOOR)
    assert (levels[2]["m_probability"], levels[2]["u_probability"]) == (M_FLOOR, U_FLOOR)
    assert model["comparisons"][0]["comparison_levels"][2]["m_probability"] == 0.0  # input untouched


@pytest.fixture(scope="module")
def trained() -> ModelArtefact:
    master = make_master(400)
    records, _ = make_records(master)
    return train_artefact(prepare_table(master), prepare_table(records), "dtks", max_pairs=50_000, seed=3)


def test_training_gives_every_non_null_level_m_and_u(trained: ModelArtefact) -> None:
    model = trained.model
    # every record of this file is in the 400-record master: the matched share hits its cap
    prior = model["probability_two_random_records_match"]
    assert prior / (1 - prior) == pytest.approx(MAX_MATCHED_SHARE / ((1 - MAX_MATCHED_SHARE) * 400))
    for comparison in model["comparisons"]:
        for level in comparison["comparison_levels"]:
            if not level.get("is_null_level"):
                assert level["m_probability"] >= M_FLOOR and level["u_probability"] >= U_FLOOR
                assert not level.get("fix_m_probability")
    nik_exact = model["comparisons"][0]["comparison_levels"][1]
    assert nik_exact["m_probability"] / nik_exact["u_probability"] > 100
    meta = trained.metadata
    assert (meta["source"], meta["spec_version"], meta["splink_version"]) == ("dtks", SPEC_VERSION, "5.0.0")
    assert len(meta["training_data_sha256"]) == 64
    assert meta["training"] == {"max_pairs": 50_000, "seed": 3, "engine": "duckdb"}
    assert meta["thresholds"] == THRESHOLDS


def test_artefact_round_trip_with_charts(trained: ModelArtefact, tmp_path: Path) -> None:
    folder = save_artefact(trained, tmp_path)
    names = sorted(p.name for p in folder.iterdir())
    assert names == [
        "m_u_parameters.html",
        "m_u_parameters.png",
        "match_weights.html",
        "match_weights.png",
        "metadata.json",
        "model.json",
    ]
    assert (folder / "match_weights.png").read_bytes()[:4] == b"\x89PNG"
    assert folder.name.startswith("dtks-") and folder.name.endswith(trained.metadata["training_data_sha256"][:8])
    loaded = load_artefact(folder / "model.json")
    assert loaded.model == trained.model and loaded.metadata == trained.metadata


def test_artefact_of_another_spec_version_is_refused(trained: ModelArtefact, tmp_path: Path) -> None:
    folder = save_artefact(
        ModelArtefact(trained.model, {**trained.metadata, "spec_version": "0"}), tmp_path, charts=False
    )
    with pytest.raises(ModelArtefactError, match="retrain"):
        load_artefact(folder)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "model.json").write_text("{", encoding="utf-8")
    with pytest.raises(ModelArtefactError, match="cannot read"):
        load_artefact(tmp_path / "broken")
    assert json.loads((folder / "metadata.json").read_text())["spec_version"] == "0"


def test_without_nik_every_comparison_is_trained() -> None:
    import pyarrow as pa

    master = make_master(400)
    records, _ = make_records(master)
    records = records.set_column(
        records.column_names.index("nik"), "nik", pa.array([None] * records.num_rows, pa.string())
    )
    artefact = train_artefact(prepare_table(master), prepare_table(records), "dtks", max_pairs=50_000, seed=3)
    assert artefact.spec.em_rules == (("name_key", "birth_year"), ("birth_date",), ("name_norm",))
    top = {c["output_column_name"]: c["comparison_levels"][1] for c in artefact.model["comparisons"]}
    assert set(top) == {"name", "birth_date", "sex", "village", "address"}
    # each comparison's top level learnt a real m in its own pass (not left at the floor or missing); the
    # address's top level (same place + RT + RW) never occurs here: these addresses carry no RT/RW
    for name, level in top.items():
        if name != "address":
            assert level["m_probability"] > 0.5, name
    assert artefact.metadata["spec"]["comparisons"] == ["name", "birth_date", "sex", "village", "address"]
