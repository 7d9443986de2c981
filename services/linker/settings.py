"""The linker's settings: ONE frozen pydantic-settings object, the only place the linker reads env.

Every field can be set with an environment variable `REGSOSEK_LINKER_<FIELD>` (e.g.
`REGSOSEK_LINKER_BOOTSTRAP=127.0.0.1:19092`, `REGSOSEK_LINKER_STATE_DIR=/var/lib/regsosek/linker`).
SASL/SCRAM on a secured broker (off by default), over PLAINTEXT or TLS: the shared block of
services/kafka/security.py, e.g. `REGSOSEK_LINKER_SASL_USERNAME`, `REGSOSEK_LINKER_SASL_PASSWORD_FILE`,
`REGSOSEK_LINKER_SECURITY_PROTOCOL=SASL_SSL`, `REGSOSEK_LINKER_SSL_CAFILE` (docs/subscriptions.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from contracts import topics
from contracts.submission import MAX_REVISION_STEP
from contracts.topics import MAX_PAYLOAD_BYTES
from services.kafka.security import KafkaSecurity
from services.shutdown import DEFAULT_SHUTDOWN_DEADLINE_S

# A development default so tests and the demo run without set-up; deployments MUST set their own key
# (a leaked key lets anyone with a NIK list recompute person ids).
DEV_PERSON_ID_KEY = "regsosek-dev-only-person-id-key"


class LinkerSettings(KafkaSecurity):
    """How one linker instance connects, batches, and where it keeps its link store."""

    model_config = SettingsConfigDict(env_prefix="REGSOSEK_LINKER_", frozen=True, extra="ignore")

    bootstrap: str = "127.0.0.1:19092"
    app_id: str = "regsosek-linker"
    # This instance's own files: the master-updates journal (`master-updates.duckdb`), faust's data folder,
    # and by default the link store's per-partition files (`links/links-p<N>.duckdb`, see `link_store_dir`).
    state_dir: Path = Path(".run/linker")
    # faust table store; the linker keeps its state in DuckDB, faust tables are not used (memory:// is fine).
    table_store: str = "memory://"

    submissions_topic: str = topics.SUBMISSIONS
    dlq_topic: str = topics.SUBMISSIONS_DLQ
    members_topic: str = topics.LINKED_MEMBERS
    families_topic: str = topics.LINKED_FAMILIES
    review_topic: str = topics.REVIEW
    # Field feedback to enumerator teams (integration/feedback.py, docs/feedback.md); empty: off.
    feedback_topic: str = topics.FIELD_FEEDBACK

    # Master and sectoral updates (services/linker/updates): a second agent on these topics, off by default.
    updates_enabled: bool = False
    population_changes_topic: str = topics.POPULATION_CHANGES
    dtks_changes_topic: str = topics.DTKS_CHANGES
    bpjs_changes_topic: str = topics.BPJS_CHANGES
    updates_topic: str = topics.UPDATES
    # How long a change batch waits for the submissions agent to reach the end of its partitions.
    updates_catchup_seconds: float = Field(default=30.0, ge=0)
    # How long the submissions of a partition whose link-store file is ahead of this instance's master
    # (its previous owner had read more changes) wait for this instance's change reader.
    updates_ahead_wait_seconds: float = Field(default=60.0, ge=0)

    # Clerical review decisions (services/linker/updates/decision_wiring.py): a per-instance reader, off by default.
    decisions_enabled: bool = False
    review_decisions_topic: str = topics.REVIEW_DECISIONS
    # The second-reviewer rule (integration/clerical.py `SecondReview`): districts (7 digits, as a
    # JSON list) where every reviewer's accept/new person needs a second, agreeing reviewer; and the
    # engine probability from which overriding its candidate needs one (None: off).
    second_review_districts: frozenset[str] = frozenset()
    second_review_min_probability: float | None = Field(default=None, ge=0.0, le=1.0)

    # Micro-batching: a batch closes at `batch_max_members` members or after `batch_wait_seconds`.
    batch_max_members: int = Field(default=1000, ge=1)
    batch_wait_seconds: float = Field(default=0.05, gt=0)
    max_payload_bytes: int = Field(default=MAX_PAYLOAD_BYTES, ge=1024)

    person_id_key: SecretStr = SecretStr(DEV_PERSON_ID_KEY)
    # The key as a file (a compose/Kubernetes secret at /run/secrets/...); wins over `person_id_key`.
    person_id_key_file: Path | None = None

    # After a fatal error or a stop request the process is gone within this time, hung or not
    # (services/shutdown.py): its DuckDB files are then free for the restarted process.
    shutdown_deadline_seconds: float = Field(default=DEFAULT_SHUTDOWN_DEADLINE_S, gt=0)
    # Owner rule (docs/linker.md): teams that may revise families another team owns, as a JSON list,
    # e.g. REGSOSEK_LINKER_SUPERVISOR_TEAMS='["team-3603-supervisor"]'. Every other team is refused.
    supervisor_teams: frozenset[str] = frozenset()
    # Largest step from a family's current revision to a new one; bigger jumps are dead-lettered.
    max_revision_step: int = Field(default=MAX_REVISION_STEP, ge=1)

    # Prometheus /metrics endpoint (services.observability); None serves no metrics.
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = Field(default=None, ge=0, le=65535)

    # The real engine: a generated world folder (population, crosswalk, sectoral files) and a model
    # artefact. When neither is set the service refuses to start (unless a linker is injected: the tests'
    # fake engine is started by tests/support/fake_linker.py, never from the shipped package).
    world_dir: Path | None = None
    model_path: Path | None = None
    # The master sharded by region (docs/linker.md, "Master sharding"): the engine holds only the master
    # rows of the districts of this instance's submissions partitions (loaded when a partition is
    # assigned, before its records are linked) plus the rows of other districts that a global index
    # over the whole master finds for a batch (movers, wrong regions). Off: the whole master.
    master_sharding: bool = False
    # The submissions topic's partition count the districts are spread over; None: the catalogue's
    # (contracts.topics) for `submissions_topic` (set it for a topic with a private name).
    master_shard_partitions: int | None = Field(default=None, ge=1)
    # Rows of other districts (found through the global index) a sharded engine keeps at most; past it the
    # engine is rebuilt from its districts and they are fetched again as needed (linkage.engine.shard).
    master_shard_fetched_rows_max: int = Field(default=250_000, ge=1)

    # The link-state changelog (services/linker/changelog.py; catalogue: regsosek.linker.state.changelog.v1):
    # each batch's changed family states are written to it before the link store and the offsets, and a
    # partition's file is restored from it when opened, so instances need no shared folder. Empty: off
    # (the files are the only state: instances must then share `link_store_dir`).
    changelog_topic: str = ""
    # Standby replicas (services/linker/partitioned_store.py `StandbyFiles`; needs the changelog): this
    # instance keeps the files of partitions it does NOT own current by reading their changelog
    # partitions in the background, so a takeover restores only the tail. "all", a number N (the N
    # partitions after its own), or empty/"0": off. `standby_interval_seconds`: the pause between passes.
    standby_partitions: str = Field(default="", pattern=r"^(|all|ALL|All|\d+)$")
    standby_interval_seconds: float = Field(default=1.0, gt=0)

    # The link store: one DuckDB file per submissions partition. Instances of one group that share this
    # folder hand a partition's state over on a rebalance (without a changelog); default: <state_dir>/links.
    link_store_dir: Path | None = None

    @model_validator(mode="after")
    def _standby_needs_the_changelog(self) -> LinkerSettings:
        if self.standby_partitions.strip() not in ("", "0") and not self.changelog_topic:
            raise ValueError("REGSOSEK_LINKER_STANDBY_PARTITIONS needs REGSOSEK_LINKER_CHANGELOG_TOPIC")
        return self

    @model_validator(mode="before")
    @classmethod
    def _key_from_file(cls, data: Any) -> Any:
        path = data.get("person_id_key_file") if isinstance(data, dict) else None
        if not path:
            return data
        try:
            key = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(f"cannot read the person id key file {path}: {exc.strerror}") from exc
        if not key:
            raise ValueError(f"the person id key file {path} is empty")
        return {**data, "person_id_key": key}

    @property
    def link_store_path(self) -> Path:
        """The folder of the link store's per-partition files."""
        return self.link_store_dir or self.state_dir / "links"

    @property
    def broker_url(self) -> str:
        """The bootstrap servers in faust's URL form."""
        return ",".join(f"kafka://{host}" for host in self.bootstrap.split(","))
