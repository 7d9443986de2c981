"""The versioned model artefact: a folder with the Splink model JSON, metadata JSON and charts.

Layout (`<out>/<source>-<UTC timestamp>-<hash8>/`):
- `model.json`    - Splink 5 model (settings with trained m/u; no term-frequency tables: they are
                    rebuilt from the master when a linker or the engine starts);
- `metadata.json` - source, created_at, splink_version, spec_version, training_data_sha256,
                    training parameters, `thresholds` {auto_link, review} (match probabilities),
                    `spec`: the comparisons, blocking rules, EM passes and prior rules chosen for the
                    training files (`linkage.spec.ModelSpec.to_metadata`; absent in older artefacts);
- `match_weights.{html,png}`, `m_u_parameters.{html,png}`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from linkage.comparisons import SPEC_VERSION
from linkage.spec import ModelSpec, spec_from_metadata

# Match-probability thresholds of the bands; chosen on generated data (see docs/linkage-model.md).
DEFAULT_THRESHOLDS: dict[str, float] = {"auto_link": 0.99, "review": 0.5}
# Floors for trained probabilities: a level never seen in training (or with m ~ 0 on clean
# generated data) must not veto a pair with a weight of -1000 bits.
M_FLOOR = 1e-3
U_FLOOR = 1e-6


class ModelArtefactError(Exception):
    """A model artefact is missing, unreadable or was built for another comparison spec."""


@dataclass(frozen=True)
class ModelArtefact:
    """A trained model and its metadata."""

    model: dict[str, Any]
    metadata: dict[str, Any]

    @property
    def spec(self) -> ModelSpec:
        """The model spec this artefact was trained with (the full source spec for older artefacts)."""
        return spec_from_metadata(self.metadata)

    @property
    def thresholds(self) -> dict[str, float]:
        return {k: float(v) for k, v in self.metadata["thresholds"].items()}

    def band(self, match_probability: float | None) -> str:
        """`auto_link`, `review` or `no_match` for a best candidate's probability."""
        return band_of(match_probability, self.thresholds)


def band_of(match_probability: float | None, thresholds: dict[str, float]) -> str:
    """Band of a probability under `{"auto_link": p, "review": p}` (None: no candidate)."""
    if match_probability is None:
        return "no_match"
    if match_probability >= thresholds["auto_link"]:
        return "auto_link"
    if match_probability >= thresholds["review"]:
        return "review"
    return "no_match"


def regularise(model: dict[str, Any]) -> dict[str, Any]:
    """Apply the m/u floors to every non-null level (returns a new dict)."""
    out: dict[str, Any] = json.loads(json.dumps(model))
    for comparison in out["comparisons"]:
        for level in comparison["comparison_levels"]:
            if level.get("is_null_level"):
                continue
            m, u = level.get("m_probability"), level.get("u_probability")
            level["m_probability"] = max(m, M_FLOOR) if isinstance(m, float | int) else M_FLOOR
            level["u_probability"] = max(u, U_FLOOR) if isinstance(u, float | int) else U_FLOOR
    return out


def table_sha256(*tables: pa.Table) -> str:
    """Content hash of the training tables (Arrow IPC bytes), recorded in the metadata."""
    digest = hashlib.sha256()
    for table in tables:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        digest.update(sink.getvalue().to_pybytes())
    return digest.hexdigest()


def build_metadata(
    source: str,
    data_hash: str,
    *,
    training: dict[str, Any],
    thresholds: dict[str, float] | None = None,
    spec: ModelSpec | None = None,
) -> dict[str, Any]:
    """Metadata for a freshly trained model."""
    from importlib.metadata import version

    extra = {"spec": spec.to_metadata()} if spec is not None else {}
    return {
        "source": source,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "splink_version": version("splink"),
        "spec_version": SPEC_VERSION,
        "training_data_sha256": data_hash,
        "training": training,
        "thresholds": dict(thresholds or DEFAULT_THRESHOLDS),
        **extra,
    }


def save_artefact(artefact: ModelArtefact, out_dir: Path, *, charts: bool = True) -> Path:
    """Write the artefact into a new versioned folder under `out_dir`; returns that folder."""
    meta = artefact.metadata
    stamp = meta["created_at"].replace(":", "").replace("-", "").replace("+0000", "Z")
    folder = out_dir / f"{meta['source']}-{stamp}-{meta['training_data_sha256'][:8]}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.json").write_text(json.dumps(artefact.model, indent=2), encoding="utf-8")
    (folder / "metadata.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    if charts:
        from linkage.model.charts import write_charts

        write_charts(artefact.model, folder)
    return folder


def load_artefact(path: Path) -> ModelArtefact:
    """Load an artefact from its folder, or from its `model.json` (metadata.json next to it)."""
    folder = path if path.is_dir() else path.parent
    try:
        model = json.loads((folder / "model.json").read_text(encoding="utf-8"))
        metadata = json.loads((folder / "metadata.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ModelArtefactError(f"cannot read model artefact at {path}: {e}") from e
    if metadata.get("spec_version") != SPEC_VERSION:
        raise ModelArtefactError(
            f"model artefact {folder} was trained for comparison spec {metadata.get('spec_version')!r}, "
            f"this code uses {SPEC_VERSION!r}: retrain with `regsosek train`"
        )
    try:
        spec_from_metadata(metadata)
    except (ValueError, KeyError, TypeError) as e:
        raise ModelArtefactError(f"model artefact {folder} has an unusable spec in metadata.json: {e}") from e
    return ModelArtefact(model, metadata)
