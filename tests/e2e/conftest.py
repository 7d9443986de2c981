"""End-to-end fixtures: one generated world and a trained model per session, linkers as real processes.

The world (5,000 persons, ~1,400 submissions, ~5,000 members) is generated and the members model
trained through the public CLI, as an operator would. `reference_members` is what the linker must end
with: the same pipeline run in-process, one submission at a time, with the same engine and model
(the integration tests prove batching does not change the bytes).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from contracts.decode import decode_family_submission
from integration.ids import PersonIds
from services.linker.engine_adapter import load_village_crosswalk
from services.linker.engine_link import EngineMemberLinker
from services.linker.pipeline import OutputTopics, SubmissionLinker
from services.linker.settings import DEV_PERSON_ID_KEY, LinkerSettings
from services.linker.store import LinkStore
from tests.support.e2e import E2EWorld, Linkers
from tests.support.linking import link_batch
from tools.pipeline.outcome import Submissions

PERSONS = 5000
SEED = 11


@pytest.fixture(scope="session")
def e2e_world(tmp_path_factory: pytest.TempPathFactory) -> E2EWorld:
    root = tmp_path_factory.mktemp("e2e-world")
    cli = str(Path(sys.executable).parent / "regsosek")
    for args in (
        ["generate", "--out", str(root / "world"), "--persons", str(PERSONS), "--seed", str(SEED)],
        [
            "train",
            "--source",
            "members",
            "--world",
            str(root / "world"),
            "--out",
            str(root / "models"),
            "--max-pairs",
            "200000",
            "--no-charts",
        ],
    ):
        done = subprocess.run([cli, *args], capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
    (model,) = (root / "models").iterdir()
    world = root / "world"
    return E2EWorld(world, model, Submissions.read(world / "submissions.jsonl"))


@pytest.fixture(scope="session")
def reference_members(e2e_world: E2EWorld) -> dict[str, bytes]:
    """The member records (latest per key) the service must publish, computed in-process."""
    settings = LinkerSettings(world_dir=e2e_world.world, model_path=e2e_world.model)
    store = LinkStore(":memory:")
    pipeline = SubmissionLinker(
        EngineMemberLinker.from_files(e2e_world.world, e2e_world.model, cache_dir=e2e_world.world / "cache"),
        PersonIds(DEV_PERSON_ID_KEY.encode()),
        OutputTopics("m", "f", "r"),
        village_crosswalk=load_village_crosswalk(settings),
    )
    out: dict[str, bytes] = {}
    for key, raw in e2e_world.submissions.records:
        result = link_batch(pipeline, store, [decode_family_submission(raw, key=key)])
        store.apply(result.update)
        for rec in result.records:
            if rec.topic == "m" and rec.key is not None:
                if rec.value is None:
                    out.pop(rec.key.decode(), None)
                else:
                    out[rec.key.decode()] = rec.value
    return out


@pytest.fixture()
def linkers(tmp_path: Path, e2e_world: E2EWorld) -> Iterator[Linkers]:
    started = Linkers(tmp_path, e2e_world)
    yield started
    started.stop_all()
