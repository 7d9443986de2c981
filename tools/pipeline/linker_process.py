"""The linker service as a child process (`python -m services.linker`), configured through its env.

The one way tests, the benchmark and the demo start linker processes: they stop them with SIGTERM, or kill
them with SIGKILL to prove at-least-once delivery. Tests pass `fake_master` to run the fake engine's entry
point (`python -m tests.support.fake_linker`) or `module` for a test-only harness. Settings travel as
`REGSOSEK_LINKER_*` variables (services/linker/settings.py); faust's consumer-group timings as `BROKER_*`.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from contracts.topics import (
    BPJS_CHANGES,
    DTKS_CHANGES,
    FIELD_FEEDBACK,
    LINK_STATE_CHANGELOG,
    LINKED_FAMILIES,
    LINKED_MEMBERS,
    POPULATION_CHANGES,
    REVIEW,
    REVIEW_DECISIONS,
    SUBMISSIONS,
    SUBMISSIONS_DLQ,
    UPDATES,
    topic_spec,
)
from services.kafka.topics import provision

REPO = Path(__file__).resolve().parents[2]

# A killed member stays in its group until the session times out, and a rebalance waits for it: faust's
# 60 s default would make every restart after a kill -9 wait a minute. 6 s is the broker's minimum.
FAST_GROUP_ENV = {
    "BROKER_SESSION_TIMEOUT": "6.0",
    "BROKER_HEARTBEAT_INTERVAL": "1.0",
    "BROKER_REBALANCE_TIMEOUT": "10.0",
}


@dataclasses.dataclass(frozen=True)
class PipelineTopics:
    """The topic names one linker deployment reads and writes."""

    submissions: str = SUBMISSIONS
    dlq: str = SUBMISSIONS_DLQ
    members: str = LINKED_MEMBERS
    families: str = LINKED_FAMILIES
    review: str = REVIEW
    feedback: str = FIELD_FEEDBACK
    # The link-state changelog: the instances restore partitions from it (no shared link-store folder).
    changelog: str = LINK_STATE_CHANGELOG

    def env(self) -> dict[str, str]:
        """The linker settings naming these topics."""
        return {
            "REGSOSEK_LINKER_SUBMISSIONS_TOPIC": self.submissions,
            "REGSOSEK_LINKER_DLQ_TOPIC": self.dlq,
            "REGSOSEK_LINKER_MEMBERS_TOPIC": self.members,
            "REGSOSEK_LINKER_FAMILIES_TOPIC": self.families,
            "REGSOSEK_LINKER_REVIEW_TOPIC": self.review,
            "REGSOSEK_LINKER_FEEDBACK_TOPIC": self.feedback,
            "REGSOSEK_LINKER_CHANGELOG_TOPIC": self.changelog,
        }


# The linker setting naming each catalogue topic it reads or writes (services/linker/settings.py).
TOPIC_ENV = {
    SUBMISSIONS: "REGSOSEK_LINKER_SUBMISSIONS_TOPIC",
    SUBMISSIONS_DLQ: "REGSOSEK_LINKER_DLQ_TOPIC",
    LINKED_MEMBERS: "REGSOSEK_LINKER_MEMBERS_TOPIC",
    LINKED_FAMILIES: "REGSOSEK_LINKER_FAMILIES_TOPIC",
    REVIEW: "REGSOSEK_LINKER_REVIEW_TOPIC",
    FIELD_FEEDBACK: "REGSOSEK_LINKER_FEEDBACK_TOPIC",
    POPULATION_CHANGES: "REGSOSEK_LINKER_POPULATION_CHANGES_TOPIC",
    DTKS_CHANGES: "REGSOSEK_LINKER_DTKS_CHANGES_TOPIC",
    BPJS_CHANGES: "REGSOSEK_LINKER_BPJS_CHANGES_TOPIC",
    UPDATES: "REGSOSEK_LINKER_UPDATES_TOPIC",
    REVIEW_DECISIONS: "REGSOSEK_LINKER_REVIEW_DECISIONS_TOPIC",
    LINK_STATE_CHANGELOG: "REGSOSEK_LINKER_CHANGELOG_TOPIC",
}


class LinkerExited(RuntimeError):
    """The linker process ended while a caller waited for it to do something."""


def provision_private_topics(bootstrap: str, prefix: str) -> PipelineTopics:
    """Copies of the catalogue's pipeline topics (same partitions and policies) named `<prefix>.<name>`.

    Lets several runs share one broker without reading each other's records.
    """
    sources = dataclasses.astuple(PipelineTopics())
    topics = PipelineTopics(*(f"{prefix}.{name}" for name in sources))
    names = dataclasses.astuple(topics)
    specs = [dataclasses.replace(topic_spec(src), name=dst) for src, dst in zip(sources, names, strict=True)]
    report = provision(bootstrap, specs)
    if report.differences:
        raise RuntimeError(f"private topics differ from the catalogue: {report.differences}")
    return topics


class LinkerProcess:
    """One linker instance as a child process; `restart()` starts it again with the same settings.

    `topics` names the topics: a `PipelineTopics`, or catalogue name -> private name for the topics a
    test renamed (the others keep their catalogue names). `fake_master` (a JSON list of master people)
    runs the fake engine instead of the real one.
    """

    def __init__(
        self,
        *,
        bootstrap: str,
        group: str,
        state_dir: Path,
        topics: PipelineTopics | Mapping[str, str],
        fake_master: Path | None = None,
        world_dir: Path | None = None,
        model_path: Path | None = None,
        link_store_dir: Path | None = None,
        log_path: Path | None = None,
        extra_env: Mapping[str, str] | None = None,
        module: str | None = None,
        args: Sequence[str] = (),
    ) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGSOSEK_LINKER_")}
        env.update(FAST_GROUP_ENV)
        if isinstance(topics, PipelineTopics):
            env.update(topics.env())
        else:
            env.update({TOPIC_ENV[catalogue]: private for catalogue, private in topics.items()})
        if fake_master is not None:
            env["REGSOSEK_LINKER_FAKE_MASTER_PATH"] = str(fake_master)
        env.update(
            {
                "REGSOSEK_LINKER_BOOTSTRAP": bootstrap,
                "REGSOSEK_LINKER_APP_ID": group,
                "REGSOSEK_LINKER_STATE_DIR": str(state_dir),
            }
        )
        if world_dir is not None:
            env["REGSOSEK_LINKER_WORLD_DIR"] = str(world_dir)
        if model_path is not None:
            env["REGSOSEK_LINKER_MODEL_PATH"] = str(model_path)
        if link_store_dir is not None:  # shared by the instances of a group: revision state follows a partition
            env["REGSOSEK_LINKER_LINK_STORE_DIR"] = str(link_store_dir)
        env.update(extra_env or {})
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        self.env = env
        self.module = module or ("tests.support.fake_linker" if fake_master is not None else "services.linker")
        self.args = list(args)
        self.name = f"linker {group}"
        self.state_dir = state_dir
        self.log_path = log_path or state_dir.parent / f"{state_dir.name}.log"
        self.starts = 0
        self.log_offset = 0  # where the current run's lines begin in the (appended) log
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        """Start the process (appending to its log file)."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.log_offset = self.log_size()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(  # noqa: S603 - fixed command line
                [sys.executable, "-m", self.module, *self.args],
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self.starts += 1

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def alive(self) -> bool:
        """True while the process runs."""
        return self.proc is not None and self.proc.poll() is None

    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def wait_exit(self, timeout_s: float) -> int | None:
        """The exit status, or None if still running after `timeout_s`."""
        if self.proc is None:
            return None
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def check_running(self) -> None:
        """Raise `LinkerExited` (with the log's end) if the process has ended."""
        if not self.alive():
            raise LinkerExited(f"the linker exited with {self.returncode()}:\n{self.log_tail()}")

    def send_signal(self, sig: signal.Signals) -> None:
        """Send `sig` without waiting (a supervisor's SIGTERM to a stuck worker)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, nothing is flushed or committed."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def restart(self) -> None:
        """Start again after a kill or an exit."""
        if self.alive():
            raise RuntimeError("the linker is still running")
        self.start()

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM and wait (SIGKILL after `timeout_s`); returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def log_text(self) -> str:
        """The whole process log (stdout and stderr of every run)."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the process log (for failure messages)."""
        return self.log_text()[-chars:]

    def wait_for_log(self, needle: str, timeout_s: float, *, since: int | None = None) -> bool:
        """Wait until `needle` appears in the log after byte `since` (default: the current run's start)
        or the process exits."""
        since = self.log_offset if since is None else since
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                with open(self.log_path, "rb") as fh:
                    fh.seek(since)
                    if needle.encode() in fh.read():
                        return True
            except OSError:
                pass
            if not self.alive():
                return False
            time.sleep(0.2)
        return False

    def log_size(self) -> int:
        """Current size of the log (a `since` for `wait_for_log`)."""
        return self.log_path.stat().st_size if self.log_path.exists() else 0
