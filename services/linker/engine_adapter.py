"""Choosing and building the `MemberLinker` the service runs with.

The real `linkage.engine.LinkageEngine` over a generated world and a model artefact (`world_dir`,
`model_path`), wrapped by `EngineMemberLinker`. The shipped package has no other engine: tests inject
their fake through `services.linker.runner.run_worker(settings, linker=...)` (tests/support/fake_linker.py).
"""

from __future__ import annotations

from collections.abc import Mapping

from integration.port import MemberLinker
from services.linker.errors import LinkerConfigError
from services.linker.settings import LinkerSettings
from services.world import village_crosswalk


def load_member_linker(settings: LinkerSettings) -> MemberLinker:
    """The linker port the settings ask for; fails fast with a remedy when files are missing."""
    if settings.world_dir is None or settings.model_path is None:
        raise LinkerConfigError(
            "no engine configured: set REGSOSEK_LINKER_WORLD_DIR and REGSOSEK_LINKER_MODEL_PATH "
            "(a world from `regsosek generate` and a model from `regsosek train`)"
        )
    from services.linker.engine_link import EngineMemberLinker

    linker: MemberLinker = EngineMemberLinker.from_files(
        settings.world_dir,
        settings.model_path,
        cache_dir=settings.state_dir / "prepared-master",
        sharded=settings.master_sharding,
        fetched_rows_max=settings.master_shard_fetched_rows_max,
    )
    return linker


def load_village_crosswalk(settings: LinkerSettings) -> Mapping[str, str]:
    """BPS -> Kemendagri village codes from the world's crosswalk.parquet (empty without a world)."""
    if settings.world_dir is None:
        return {}
    path = settings.world_dir / "crosswalk.parquet"
    if not path.is_file():
        return {}
    return village_crosswalk(path)
