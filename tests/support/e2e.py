"""What the end-to-end fixtures (tests/e2e/conftest.py) give a test: the world, linker processes, topics."""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from pathlib import Path

from contracts.topics import BPJS_CHANGES, DTKS_CHANGES, POPULATION_CHANGES, UPDATES, topic_spec
from services.kafka.topics import provision
from tools.pipeline.linker_process import LinkerProcess, PipelineTopics, provision_private_topics
from tools.pipeline.outcome import Submissions


@dataclass(frozen=True)
class E2EWorld:
    """A generated world, its trained members model and its parsed submissions."""

    world: Path
    model: Path
    submissions: Submissions


class Linkers:
    """Starts linker processes for one test and stops every one of them afterwards."""

    def __init__(self, tmp: Path, world: E2EWorld) -> None:
        self._tmp = tmp
        self._world = world
        self.started: list[LinkerProcess] = []

    def start(
        self,
        bootstrap: str,
        topics: PipelineTopics,
        group: str,
        name: str = "linker",
        link_store_dir: Path | None = None,
    ) -> LinkerProcess:
        proc = LinkerProcess(
            bootstrap=bootstrap,
            group=group,
            state_dir=self._tmp / name / "state",
            topics=topics,
            world_dir=self._world.world,
            model_path=self._world.model,
            link_store_dir=link_store_dir,
            log_path=self._tmp / f"{name}.log",
        )
        self.started.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.started:
            proc.stop()


def private_topics(bootstrap: str) -> tuple[PipelineTopics, str]:
    """Fresh copies of the pipeline topics and a fresh consumer group for one test."""
    tag = f"e2e{uuid.uuid4().hex[:8]}"
    return provision_private_topics(bootstrap, tag), tag


def private_change_topics(bootstrap: str, tag: str) -> tuple[dict[str, str], dict[str, str]]:
    """Fresh copies `<tag>.<name>` of the change topics and the updates topic (time retention off);
    returns catalogue name -> private name, and the linker settings that turn master updates on over them."""
    names = {src: f"{tag}.{src}" for src in (POPULATION_CHANGES, DTKS_CHANGES, BPJS_CHANGES, UPDATES)}
    # Kept forever: the tests' change records carry event times of past years as their Kafka timestamps,
    # and the catalogue's 30-day time retention let the broker delete them mid-test (an instance's
    # journal position was then out of range: a CI run failed on it).
    specs = [dataclasses.replace(topic_spec(src), name=dst, retention_ms=-1) for src, dst in names.items()]
    report = provision(bootstrap, specs)
    if report.differences:
        raise RuntimeError(f"private change topics differ from the catalogue: {report.differences}")
    env = {
        "REGSOSEK_LINKER_UPDATES_ENABLED": "true",
        "REGSOSEK_LINKER_POPULATION_CHANGES_TOPIC": names[POPULATION_CHANGES],
        "REGSOSEK_LINKER_DTKS_CHANGES_TOPIC": names[DTKS_CHANGES],
        "REGSOSEK_LINKER_BPJS_CHANGES_TOPIC": names[BPJS_CHANGES],
        "REGSOSEK_LINKER_UPDATES_TOPIC": names[UPDATES],
        "REGSOSEK_LINKER_UPDATES_CATCHUP_SECONDS": "60",
    }
    return names, env
