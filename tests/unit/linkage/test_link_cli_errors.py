"""Data-shaped problems in `regsosek link` / `evaluate`: exit 2 with one line, or a counted report."""

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
from linkage.records import LINKAGE_COLUMNS, LINKAGE_SCHEMA
from services.cli import _register, app

runner = CliRunner()


def _errors(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error:")]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    _register()
    tmp = tmp_path_factory.mktemp("errors")
    master = make_master(400)
    records, truth = make_records(master)
    model = save_artefact(
        train_artefact(prepare_table(master), prepare_table(records), "dtks", max_pairs=50_000, seed=5),
        tmp / "models",
        charts=False,
    )
    pq.write_table(master, tmp / "master.parquet")
    pq.write_table(records, tmp / "records.parquet")
    pq.write_table(
        pa.table({"record_id": list(truth), "true_nik": list(truth.values()), "noise": [""] * len(truth)}),
        tmp / "truth.parquet",
    )
    return {"tmp": tmp, "model": model, "master": tmp / "master.parquet", "records": tmp / "records.parquet"}


def _link(files: dict[str, Path], records: Path, out: Path, *extra: str) -> tuple[int, str]:
    args = ["link", "--master", str(files["master"]), "--records", str(records), "--out", str(out), *extra]
    result = runner.invoke(app, args)
    return result.exit_code, result.output


def test_header_only_csv(files: dict[str, Path]) -> None:
    empty = files["tmp"] / "header_only.csv"
    empty.write_text(",".join(LINKAGE_COLUMNS) + "\n", encoding="utf-8")
    code, output = _link(files, empty, files["tmp"] / "o1.csv", "--model", str(files["model"]))
    assert code == 2
    assert _errors(output) == ["error: records file has no rows (only a header?)"]
    assert "Traceback" not in output and not (files["tmp"] / "o1.csv").exists()


def test_an_empty_nik_column_trains_without_nik_and_links(files: dict[str, Path]) -> None:
    records = pq.read_table(files["records"])
    no_nik = records.set_column(
        records.column_names.index("nik"), "nik", pa.array([""] * records.num_rows, pa.string())
    )
    path = files["tmp"] / "no_nik.parquet"
    pq.write_table(no_nik, path)
    out = files["tmp"] / "no_nik_links.parquet"
    code, output = _link(files, path, out, "--source", "dtks")
    assert code == 0, output
    assert "model spec: comparisons: name, birth_date, sex, village" in output
    assert "model spec: left out: nik (nik filled 100% in the master, 0% in the records (floor 20%))" in output
    links = pq.read_table(out).to_pylist()
    truth = pq.read_table(files["tmp"] / "truth.parquet").to_pylist()
    true_of = {t["record_id"]: t["true_nik"] for t in truth}
    auto = [r for r in links if r["band"] == "auto_link"]
    correct = sum(r["master_record_id"] == true_of[r["record_id"]] for r in auto)
    assert len(auto) >= 0.8 * len(links) and correct >= 0.99 * len(auto)


def test_a_name_alone_is_too_little_to_link(files: dict[str, Path]) -> None:
    master = pq.read_table(files["master"])
    rows = [
        {"record_id": f"x{i}", "full_name": name} for i, name in enumerate(master.column("full_name")[:50].to_pylist())
    ]
    names_only = files["tmp"] / "names.csv"
    pacsv.write_csv(
        pa.Table.from_pylist([{c: r.get(c) for c in LINKAGE_COLUMNS} for r in rows], schema=LINKAGE_SCHEMA), names_only
    )
    code, output = _link(files, names_only, files["tmp"] / "o2.csv")
    assert code == 2
    (line,) = _errors(output)
    assert line.startswith("error: too little to link: only name is filled in both files")
    assert "birth_date" in line and "Traceback" not in output


def test_invalid_dates_are_counted_and_reported(files: dict[str, Path]) -> None:
    records = pq.read_table(files["records"]).to_pylist()[:40]
    for r in records[5:8]:
        r["birth_date"] = "31/02/1990"
    records[9]["birth_date"] = "15/02/1990"  # valid, day first: used
    path = files["tmp"] / "bad_dates.csv"
    pacsv.write_csv(pa.Table.from_pylist(records, schema=LINKAGE_SCHEMA), path)
    code, output = _link(files, path, files["tmp"] / "o3.csv", "--model", str(files["model"]))
    assert code == 0, output
    assert (
        "records file: 3 birth_date value(s) are not valid and are treated as unknown (first at data row 6)" in output
    )


def test_an_existing_out_is_refused_unless_forced(files: dict[str, Path]) -> None:
    out = files["tmp"] / "exists.csv"
    out.write_text("keep me\n", encoding="utf-8")
    code, output = _link(files, files["records"], out, "--model", str(files["model"]))
    assert code == 2
    assert _errors(output) == [f"error: {out} already exists; choose another --out or pass --force to overwrite it"]
    assert out.read_text(encoding="utf-8") == "keep me\n"
    code, output = _link(files, files["records"], out, "--model", str(files["model"]), "--force")
    assert code == 0, output
    assert out.read_text(encoding="utf-8").startswith('"record_id"')


def test_evaluate_refuses_a_wrong_truth_file(files: dict[str, Path]) -> None:
    links = files["tmp"] / "eval_links.parquet"
    code, output = _link(files, files["records"], links, "--model", str(files["model"]))
    assert code == 0, output
    other = files["tmp"] / "other_truth.parquet"
    pq.write_table(pa.table({"record_id": ["zz1"], "true_nik": ["1"], "noise": [""]}), other)
    result = runner.invoke(app, ["evaluate", "--links", str(links), "--truth", str(other)])
    assert result.exit_code == 2
    assert _errors(result.output) == [
        "error: the truth file shares no record_id with the links: is it the truth of the world the links come from?"
    ]
    no_column = files["tmp"] / "no_column_truth.parquet"
    pq.write_table(pa.table({"record_id": ["a"], "nik": ["1"]}), no_column)
    result = runner.invoke(app, ["evaluate", "--links", str(links), "--truth", str(no_column)])
    assert result.exit_code == 2
    assert _errors(result.output) == [
        "error: truth file has no column 'true_nik'; expected columns: record_id, true_nik, noise"
    ]


def test_evaluate_prints_the_calibration_table(files: dict[str, Path]) -> None:
    links = files["tmp"] / "eval_links2.parquet"
    code, _ = _link(files, files["records"], links, "--model", str(files["model"]))
    assert code == 0
    result = runner.invoke(app, ["evaluate", "--links", str(links), "--truth", str(files["tmp"] / "truth.parquet")])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    start = lines.index("calibration: predicted probability -> observed precision")
    table = lines[start + 2 :]
    linked = [r for r in pq.read_table(links).to_pylist() if r["master_record_id"]]
    assert sum(int(row.split()[2]) for row in table) == len(linked)  # every best candidate in one bin
    top = next(row for row in table if row.startswith("[0.9999, 1]"))
    assert float(top.split()[-1]) >= 0.99
