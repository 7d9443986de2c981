"""`regsosek generate` and the noise profile presets / JSON overrides."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import lokal
import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

from services.commands import generate as generate_command
from synthetic import NoiseProfile, generate_world


@pytest.fixture()
def app() -> typer.Typer:
    app = typer.Typer()
    generate_command.register(app)
    app.command("noop")(lambda: None)  # a second command keeps `generate` a named sub-command
    return app


def test_generate_writes_the_world_and_reports_counts(app: typer.Typer, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["generate", "--persons", "400", "--seed", "9", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "400 persons" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "bpjs.parquet",
        "crosswalk.parquet",
        "dtks.parquet",
        "population.parquet",
        "submissions.jsonl",
        "truth.parquet",
    ]
    assert pq.read_table(tmp_path / "population.parquet").num_rows == 400


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--regency", "9999"], "unknown Kemendagri regency"),
        (["--regency", "36x3"], "4 digits"),
        (["--profile", "nonsense"], "unknown noise profile"),
        (["--persons", "0"], "persons"),
    ],
)
def test_bad_arguments_are_usage_errors_without_traceback(
    app: typer.Typer, tmp_path: Path, args: list[str], message: str
) -> None:
    # click keeps the last value of a repeated option, so `args` override the defaults before them
    argv = ["generate", "--persons", "10", "--seed", "1", "--out", str(tmp_path), *args]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 2
    assert message in " ".join(result.output.replace("│", " ").split())
    assert "Traceback" not in result.output
    assert not (tmp_path / "population.parquet").exists()


def test_profile_presets_and_json_overrides(tmp_path: Path) -> None:
    assert NoiseProfile.named("default") == NoiseProfile()
    clean = NoiseProfile.named("clean")
    assert clean.nik_missing == 0 and clean.family_coverage == 1 and clean.dtks_nik_present == 1
    assert NoiseProfile.named("noisy").name_variant == pytest.approx(2 * NoiseProfile().name_variant)
    overrides = tmp_path / "rates.json"
    overrides.write_text(json.dumps({"nik_missing": 0.4, "sex_missing": 0}))
    custom = NoiseProfile.named(str(overrides))
    assert (custom.nik_missing, custom.sex_missing, custom.name_variant) == (0.4, 0.0, 0.08)
    overrides.write_text(json.dumps({"nik_missin": 0.4}))
    with pytest.raises(ValueError, match="unknown keys: \\['nik_missin'\\]"):
        NoiseProfile.named(str(overrides))
    with pytest.raises(ValueError, match="together must not exceed 1"):
        NoiseProfile(nik_missing=0.9, nik_mistyped=0.2)


def test_invalid_nik_share_makes_some_mistyped_niks_structurally_invalid(tmp_path: Path) -> None:
    world = generate_world(
        tmp_path, persons=3000, seed=4, profile=NoiseProfile(nik_mistyped=0.05, nik_invalid_share=0.5)
    )
    truth = [t for t in pq.read_table(world.truth).to_pylist() if t["source"] == "member"]
    submitted = [m["nik"] for line in world.submissions.open() for m in json.loads(line)["members"]]
    invalid = [i for i, nik in enumerate(submitted) if nik is not None and not lokal.parse_nik(nik).valid]
    mistyped = [i for i, t in enumerate(truth) if "nik_mistyped" in t["noise"]]
    assert set(invalid) <= set(mistyped)
    assert len(invalid) == pytest.approx(len(mistyped) / 2, rel=0.25)
    assert all(submitted[i].endswith("0000") for i in invalid)


def _regsosek_without(module: str, *argv: str) -> subprocess.CompletedProcess[str]:
    """Run the `regsosek` CLI in a fresh interpreter where `module` cannot be imported (an extra not installed)."""
    code = f"import sys; sys.modules[{module!r}] = None; sys.argv = ['regsosek', *sys.argv[1:]]; " + (
        "from services.cli import main; main()"
    )
    return subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=120)


def test_generate_without_the_synthetic_extra_exits_2_with_one_line(tmp_path: Path) -> None:
    result = _regsosek_without("faker", "generate", "--persons", "10", "--seed", "1", "--out", str(tmp_path / "w"))
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [generate_command.MISSING_EXTRA]
    assert not (tmp_path / "w").exists()


def test_the_cli_and_the_linker_load_without_the_synthetic_extra() -> None:
    # Building the CLI imports every command module; none of them, nor the linker, may load the generator.
    code = (
        "import sys; sys.modules['faker'] = None\n"
        "from services.cli import _register; _register()\n"
        "import services.linker.runner, services.gateway.app, services.publisher.loop\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('synthetic', 'faker') and sys.modules[m]))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
