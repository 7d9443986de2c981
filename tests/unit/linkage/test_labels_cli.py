"""`regsosek evaluate --labels` and `regsosek train --labels` on a small generated world (exact counts)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute  # noqa: F401 (pa.compute)
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from linkage.batch import link_file, train_artefact
from linkage.labels import label_keys
from linkage.model.artefact import save_artefact
from linkage.model.charts import CHARTS_EXTRA
from linkage.normalise import prepare_table
from services.cli import _register, app
from services.world import load_world_source
from synthetic.profile import NoiseProfile
from synthetic.world import generate_world

runner = CliRunner()
UNKNOWN = [f"99999999999999999999{i:02d}-01" for i in range(5)]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A world, an unsupervised model, its links, and labels: 40 right auto-links labelled 1, 10 right
    auto-links whose pair is labelled 0 (so the labels call them wrong), 5 records not in the world."""
    _register()
    tmp = tmp_path_factory.mktemp("labels")
    world = tmp / "world"
    generate_world(world, persons=2_000, seed=23, profile=NoiseProfile.hard())
    master, records = load_world_source(str(world), "members")
    artefact = train_artefact(prepare_table(master), prepare_table(records), "members", max_pairs=50_000, seed=5)
    model = save_artefact(artefact, tmp / "models", charts=False)
    links, _ = link_file(master, records, artefact=artefact)
    links = links.append_column("member_key", pa.array(label_keys(records), pa.string()))
    pq.write_table(links, tmp / "links.parquet")
    truth_table = pq.read_table(world / "truth.parquet")
    truth = dict(
        zip(truth_table.column("record_id").to_pylist(), truth_table.column("true_nik").to_pylist(), strict=True)
    )
    right = [
        (key, mid)
        for rid, key, mid, band in zip(
            *(links.column(c).to_pylist() for c in ("record_id", "member_key", "master_record_id", "band")), strict=True
        )
        if band == "auto_link" and mid and truth.get(rid) == mid
    ]
    assert len(right) > 50
    rows = [{"record_id": k, "master_record_id": m, "label": 1} for k, m in right[:40]]
    rows += [{"record_id": k, "master_record_id": m, "label": 0} for k, m in right[40:50]]
    rows += [{"record_id": k, "master_record_id": "3603010101800001", "label": 1} for k in UNKNOWN]
    schema = pa.schema([("record_id", pa.string()), ("master_record_id", pa.string()), ("label", pa.int8())])
    labels = pa.Table.from_pylist(rows, schema=schema)
    pq.write_table(labels, tmp / "labels.parquet")
    pacsv.write_csv(labels, tmp / "labels.csv")
    pq.write_table(labels.drop_columns(["label"]), tmp / "nolabel.parquet")
    return {
        "world": world,
        "model": model,
        "links": tmp / "links.parquet",
        "labels": tmp / "labels.parquet",
        "csv": tmp / "labels.csv",
        "nolabel": tmp / "nolabel.parquet",
        "tmp": tmp,
    }


EXPECTED = [
    "labelled records 55: used 50, not in the links 5 (50 labelled pairs used)",
    # 40 right, 10 wrong (labelled 0), the 40 positives all linked: precision 0.8, recall 1
    "auto-link         0.8000   1.0000   0.8889      40      10       0         0",
    "auto+review       0.8000   1.0000   0.8889      40      10       0         0",
]


def test_evaluate_links_against_labels(files: dict[str, Path]) -> None:
    for labels in (files["labels"], files["csv"]):
        result = runner.invoke(app, ["evaluate", "--links", str(files["links"]), "--labels", str(labels)])
        assert result.exit_code == 0, result.output
        assert result.stdout.splitlines()[0] == EXPECTED[0]
        assert result.stdout.splitlines()[2:4] == EXPECTED[1:]


def test_evaluate_world_with_model_against_labels(files: dict[str, Path]) -> None:
    result = runner.invoke(
        app,
        ["evaluate", "--world", str(files["world"]), "--model", str(files["model"]), "--labels", str(files["labels"])],
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == EXPECTED[0] and lines[2:4] == EXPECTED[1:]


@pytest.mark.parametrize(
    ("labels_key", "links_key", "message"),
    [
        ("nolabel", "links", "labels file has no column 'label'"),
        ("labels", "labels", "links file has no column 'band'"),
    ],
)
def test_evaluate_refuses_wrong_files_with_one_line(
    files: dict[str, Path], labels_key: str, links_key: str, message: str
) -> None:
    result = runner.invoke(app, ["evaluate", "--links", str(files[links_key]), "--labels", str(files[labels_key])])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_evaluate_refuses_links_that_share_no_record_with_the_labels(files: dict[str, Path]) -> None:
    links = pq.read_table(files["links"]).drop_columns(["member_key"])
    path = files["tmp"] / "links-no-keys.parquet"
    pq.write_table(links, path)
    result = runner.invoke(app, ["evaluate", "--links", str(path), "--labels", str(files["labels"])])
    assert result.exit_code == 2 and "the labels share no record with the links" in result.output


def test_train_with_labels_re_estimates_m_and_records_the_calibration(files: dict[str, Path]) -> None:
    out = files["tmp"] / "relabelled"
    result = runner.invoke(
        app,
        [
            "train",
            "--source",
            "members",
            "--world",
            str(files["world"]),
            "--out",
            str(out),
            "--model",
            str(files["model"]),
            "--labels",
            str(files["labels"]),
            "--no-charts",
            "--label-prior-pairs",
            "10",
        ],
    )
    assert result.exit_code == 0, result.output
    folder = Path(result.stdout.strip().splitlines()[-1])
    meta = json.loads((folder / "metadata.json").read_text())
    used = meta["labels"]
    positives = set(
        pq.read_table(files["labels"])
        .filter(pa.compute.equal(pa.compute.field("label"), 1))
        .column("record_id")
        .to_pylist()
    )
    # a labelled member counts once per record of it (a revised family has two)
    records_of_positives = sum(k in positives for k in pq.read_table(files["links"]).column("member_key").to_pylist())
    assert records_of_positives > 40
    assert (used["records"], used["positives"], used["negatives"], used["matches_used"]) == (
        55,
        45,
        10,
        records_of_positives,
    )
    assert used["prior_pairs"] == 10.0
    labelled = set(pq.read_table(files["labels"]).column("record_id").to_pylist())
    # every record of a labelled member: its best candidate is the labelled one, right or labelled 0
    assert used["calibration"]["judged"] == sum(
        k in labelled for k in pq.read_table(files["links"]).column("member_key").to_pylist()
    )
    base_model = json.loads((files["model"] / "model.json").read_text())
    new_model = json.loads((folder / "model.json").read_text())
    assert new_model["comparisons"] != base_model["comparisons"]  # m moved towards the labelled pairs
    thresholds = meta["thresholds"]
    assert re.search(
        rf"auto_link 0.99 -> {thresholds['auto_link']:g}, review 0.5 -> {thresholds['review']:g}", result.output
    )
    # 10 of the 50 judged best candidates are wrong (at probabilities near 1): no auto-link threshold
    # reaches 0.99 labelled precision, so it is kept
    assert "auto_link" in used["calibration"]["kept"] and thresholds["auto_link"] == 0.99
    evaluated = runner.invoke(
        app, ["evaluate", "--world", str(files["world"]), "--model", str(folder), "--labels", str(files["labels"])]
    )
    assert evaluated.exit_code == 0 and evaluated.stdout.splitlines()[0] == EXPECTED[0]


def test_train_refuses_a_wrong_labels_file_and_a_model_without_labels(files: dict[str, Path]) -> None:
    out = str(files["tmp"] / "never")
    bad = runner.invoke(
        app,
        [
            "train",
            "--source",
            "members",
            "--world",
            str(files["world"]),
            "--out",
            out,
            "--model",
            str(files["model"]),
            "--labels",
            str(files["nolabel"]),
        ],
    )
    assert bad.exit_code == 2 and "has no column 'label'" in bad.output
    alone = runner.invoke(
        app,
        ["train", "--source", "members", "--world", str(files["world"]), "--out", out, "--model", str(files["model"])],
    )
    assert alone.exit_code == 2 and "--model only goes with --labels" in alone.output
    assert not Path(out).exists()


def test_train_without_the_charts_extra_writes_the_model_and_skips_the_charts(
    files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "altair", None)  # as if the `charts` extra were not installed
    out = files["tmp"] / "no-charts-extra"
    argv = ["train", "--source", "members", "--world", str(files["world"]), "--out", str(out), "--max-pairs", "50000"]
    result = runner.invoke(app, argv)
    assert result.exit_code == 0, result.output
    assert f"charts skipped: {CHARTS_EXTRA}" in result.stderr.splitlines()
    folder = Path(result.stdout.strip().splitlines()[-1])
    assert sorted(p.name for p in folder.iterdir()) == ["metadata.json", "model.json"]
