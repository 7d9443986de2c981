"""The review app's settings: one frozen pydantic-settings object, the only place the app reads env.

Every field can be set with an environment variable prefixed `REGSOSEK_REVIEW_` (e.g.
`REGSOSEK_REVIEW_BOOTSTRAP=127.0.0.1:19092`) or passed as a keyword argument, which wins over env.
SASL/SCRAM on a secured broker, over PLAINTEXT or TLS: the shared block of services/kafka/security.py
(`REGSOSEK_REVIEW_SASL_USERNAME`, `..._SASL_PASSWORD_FILE`, `..._SECURITY_PROTOCOL`, `..._SSL_CAFILE`, ...).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from contracts.topics import LINKED_MEMBERS, REVIEW, REVIEW_DECISIONS, SUBMISSIONS
from services.kafka.security import KafkaSecurity


class ReviewSettings(KafkaSecurity):
    """Everything the review app needs to run; immutable once built."""

    model_config = SettingsConfigDict(env_prefix="REGSOSEK_REVIEW_", frozen=True, extra="forbid")

    bootstrap: str = Field(default="127.0.0.1:19092", description="Kafka bootstrap servers")
    review_topic: str = Field(default=REVIEW, description="review tasks are read from here")
    members_topic: str = Field(default=LINKED_MEMBERS, description="a newer link out of review closes a task")
    submissions_topic: str = Field(default=SUBMISSIONS, description="the survey members shown beside candidates")
    decisions_topic: str = Field(default=REVIEW_DECISIONS, description="decisions are produced here")
    state_path: Path = Field(default=Path(".run/review/review.sqlite"), description="the app's durable state")
    users_file: Path = Field(default=Path(".run/review/users.json"), description="`regsosek review users add`")
    master_path: Path | None = Field(default=None, description="population.parquet for candidate details")
    host: str = "127.0.0.1"
    port: int = Field(default=8090, ge=0, le=65535)
    produce_timeout_s: float = Field(default=10.0, gt=0, description="wait for the broker's acknowledgement")
    session_ttl_s: int = Field(default=8 * 3600, gt=0, description="a login lasts this long")
    queue_page_size: int = Field(default=100, ge=1, le=1000, description="tasks listed on the queue page")
    candidates_shown: int = Field(default=5, ge=1, le=9, description="most candidates on a task page")
    queue_order: Literal["age", "uncertainty"] = Field(
        default="age", description="age: oldest first (aid families first within a day); uncertainty: active learning"
    )
    client_id: str = "regsosek-review"
    #: Cookies marked Secure (set behind TLS); off for plain-HTTP local use and the tests.
    secure_cookies: bool = False
