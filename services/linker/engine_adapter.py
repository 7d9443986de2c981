"""Choosing and building the `MemberLinker` the service runs with.

- `fake_master_path` set: the deterministic `FakeMemberLinker` over a JSON list of master persons (tests
  and demos without trained models);
- otherwise the real `linkage.engine.LinkageEngine` over a generated world and a model artefact
  (`world_dir`, `model_path`), wrapped by `EngineMemberLinker`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from services.linker.errors import LinkerConfigError
from services.linker.port import MemberLinker
from services.linker.settings import LinkerSettings
from tests.support.linker import FakeMasterPerson, FakeMemberLinker


def load_member_linker(settings: LinkerSettings) -> MemberLinker:
    """The linker port the settings ask for; fails fast with a remedy when files are missing."""
    if settings.fake_master_path is not None:
        try:
            rows = json.loads(settings.fake_master_path.read_text())
        except (OSError, ValueError) as exc:
            path = settings.fake_master_path
            raise LinkerConfigError(f"cannot read the fake master {path}: {exc}") from exc
        return FakeMemberLinker.of(FakeMasterPerson(**row) for row in rows)
    if settings.world_dir is None or settings.model_path is None:
        raise LinkerConfigError(
            "no engine configured: set REGSOSEK_LINKER_WORLD_DIR and REGSOSEK_LINKER_MODEL_PATH "
            "(a world from `regsosek generate` and a model from `regsosek train`)"
        )
    from services.linker.engine_link import EngineMemberLinker

    linker: MemberLinker = EngineMemberLinker.from_files(
        settings.world_dir, settings.model_path, cache_dir=settings.state_dir / "prepared-master"
    )
    return linker


def load_village_crosswalk(settings: LinkerSettings) -> Mapping[str, str]:
    """BPS -> Kemendagri village codes from the world's crosswalk.parquet (empty without a world)."""
    if settings.world_dir is None:
        return {}
    path = settings.world_dir / "crosswalk.parquet"
    if not path.is_file():
        return {}
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=["level", "bps_code", "kemendagri_code"]).to_pylist()
    return {r["bps_code"]: r["kemendagri_code"] for r in table if r["level"] == "village"}
