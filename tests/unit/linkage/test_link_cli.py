"""`regsosek link` and `regsosek evaluate` on tiny files whose right answers are known."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from factories import make_master, make_records
from typer.testing import CliRunner

from linkage.batch import train_artefact
from linkage.model.artefact import save_artefact
from linkage.normalise import prepare_table
from linkage.records import LINKAGE_SCHEMA
from services.cli import _register, app

runner = CliRunner()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    _register()
    tmp = tmp_path_factory.mktemp("link")
    master = make_master(400)
    records, _ = make_records(master)
    model = save_artefact(
        train_artefact(prepare_table(master), prepare_table(records), "members", max_pairs=50_000, seed=5),
        tmp / "models",
        charts=False,
    )
    pq.write_table(master, tmp / "master.parquet")
    rows = master.to_pylist()
    a, b = rows[10], rows[20]
    d = str(a["birth_date"])
    query = [
        # honorific, upper case, day and month swapped when possible
        {
            **a,
            "record_id": "q1",
            "full_name": "H. " + str(a["full_name"]).upper(),
            "birth_date": f"{d[:4]}-{d[8:10]}-{d[5:7]}" if int(d[8:10]) <= 12 else d,
        },
        # no NIK, no KK, sex missing
        {**b, "record_id": "q2", "nik": None, "kk_number": None, "sex": None},
        # a person who is not in the master
        {
            "record_id": "q3",
            "nik": None,
            "kk_number": None,
            "full_name": "Xaverius Zulkarnain",
            "sex": "M",
            "birth_date": "1901-02-03",
            "birth_year": 1901,
            "village_code": None,
            "address": None,
        },
    ]
    pacsv.write_csv(pa.Table.from_pylist(query, schema=LINKAGE_SCHEMA), tmp / "records.csv")
    return {
        "tmp": tmp,
        "model": model,
        "master": tmp / "master.parquet",
        "records": tmp / "records.csv",
        "a": Path(str(a["nik"])),
        "b": Path(str(b["nik"])),
    }


def test_link_with_model_gives_the_known_links(files: dict[str, Path]) -> None:
    out = files["tmp"] / "links.csv"
    result = runner.invoke(
        app,
        [
            "link",
            "--master",
            str(files["master"]),
            "--records",
            str(files["records"]),
            "--out",
            str(out),
            "--model",
            str(files["model"]),
        ],
    )
    assert result.exit_code == 0, result.output
    links = pacsv.read_csv(
        out, convert_options=pacsv.ConvertOptions(column_types={"master_record_id": pa.string()})
    ).to_pylist()
    assert [r["record_id"] for r in links] == ["q1", "q2", "q3"]
    assert [r["master_record_id"] for r in links] == [str(files["a"]), str(files["b"]), ""]
    assert [r["band"] for r in links] == ["auto_link", "auto_link", "no_match"]
    assert links[0]["match_probability"] > 0.99 and links[0]["match_weight"] > 10


def test_link_without_model_trains_first(files: dict[str, Path]) -> None:
    out = files["tmp"] / "links.parquet"
    result = runner.invoke(
        app,
        [
            "link",
            "--master",
            str(files["master"]),
            "--records",
            str(files["master"]),
            "--out",
            str(out),
            "--source",
            "dtks",
        ],
    )
    assert result.exit_code == 0, result.output
    links = pq.read_table(out)
    assert links.column_names == ["record_id", "master_record_id", "match_probability", "match_weight", "band"]
    # Linking the master to itself: every record finds itself.
    assert links.column("record_id").to_pylist() == links.column("master_record_id").to_pylist()


def test_missing_column_is_a_clear_error(files: dict[str, Path]) -> None:
    bad = files["tmp"] / "bad.csv"
    bad.write_text(
        "record_id,nik,kk_number,name,sex,birth_date,birth_year,village_code,address\nx,,,Budi,M,,,,\n",
        encoding="utf-8",
    )
    result = runner.invoke(
        app,
        [
            "link",
            "--master",
            str(files["master"]),
            "--records",
            str(bad),
            "--out",
            str(files["tmp"] / "o.csv"),
            "--model",
            str(files["model"]),
        ],
    )
    assert result.exit_code == 2
    assert "records file has no column 'full_name'" in result.output
    assert "expected columns: record_id, nik, kk_number, full_name" in result.output


def test_missing_model_is_a_clear_error(files: dict[str, Path]) -> None:
    result = runner.invoke(
        app,
        [
            "link",
            "--master",
            str(files["master"]),
            "--records",
            str(files["records"]),
            "--out",
            str(files["tmp"] / "o.csv"),
            "--model",
            str(files["tmp"] / "nope"),
        ],
    )
    assert result.exit_code == 2
    assert "cannot read model artefact" in result.output


def test_evaluate_prints_metrics(files: dict[str, Path]) -> None:
    links = files["tmp"] / "e_links.csv"
    truth = files["tmp"] / "truth.parquet"
    pacsv.write_csv(
        pa.table(
            {
                "record_id": ["q1", "q2"],
                "master_record_id": ["A", "C"],
                "match_probability": [1.0, 0.6],
                "match_weight": [20.0, 1.0],
                "band": ["auto_link", "review"],
            }
        ),
        links,
    )
    pq.write_table(
        pa.table(
            {
                "source": ["member"] * 2,
                "record_id": ["q1", "q2"],
                "member_key": [None, None],
                "true_nik": ["A", "B"],
                "noise": ["", "nik_missing"],
            }
        ),
        truth,
    )
    result = runner.invoke(app, ["evaluate", "--links", str(links), "--truth", str(truth)])
    assert result.exit_code == 0, result.output
    rows = {" ".join(line.split()[:-1]): line.split()[-1] for line in result.output.splitlines() if line.strip()}
    assert rows["auto-link precision"] == "1.0000"
    assert rows["auto-link recall"] == "0.5000"
    assert rows["auto+review precision"] == "0.5000"
    assert rows["share review"] == "0.5000"
    assert rows["nik_missing"] == "1/1"
