"""The ingest gateway's HTTP API (FastAPI) and its composition root `build_app`.

`POST /v1/submissions` takes one FamilySubmission v1 from a CAPI device and answers 202 only after the
broker acknowledged the record (acks=all): a 202 always means "stored". The order of checks is chosen so
that cheap refusals come first and nothing unbounded is read: token (401), media type (415), declared and
streamed body size (413), duplicate keys and contract validation (422, in the threadpool so a heavy body
does not stall other requests), the family's region against the token's regions (403), produce (503 when
the broker does not acknowledge in time).
The record's value is the request body byte-for-byte and its key is the 22-digit family key, so all
revisions of one family land on one partition in the order they were accepted.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version as dist_version
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import BaseModel

from contracts.feedback import FieldFeedback
from contracts.topics import TEAM_HEADER as SUBMISSIONS_TEAM_HEADER
from services.gateway.auth import TeamGrant, TeamTokens
from services.gateway.body import BodyTooLarge, is_json_utf8, read_bounded_body
from services.gateway.feedback import BadCursor, Cursor, FeedbackIndex, FeedbackSource, KafkaFeedbackReader
from services.gateway.openapi import install_openapi, submission_request_body
from services.gateway.problems import Problem, ValidationProblem, install_problem_handlers, problem, validation_problem
from services.gateway.producer import (
    BrokerUnavailable,
    KafkaSubmissionProducer,
    MessageTooLarge,
    SubmissionProducer,
)
from services.gateway.request_id import RequestIdMiddleware
from services.gateway.settings import GatewaySettings
from services.gateway.validation import Invalid, SubmissionChecker
from services.observability.gateway_metrics import GatewayMetrics, MetricsMiddleware

log = logging.getLogger("services.gateway")

#: Kafka header naming the enumerator team that sent the record (audit, and the linker's owner rule).
TEAM_HEADER = SUBMISSIONS_TEAM_HEADER
RETRY_AFTER_S = "1"
UNSUPPORTED_MEDIA_TYPE = "Content-Type must be application/json (optionally with charset=utf-8)"


class SubmissionAccepted(BaseModel):
    """202 body: the submission is stored in the broker at this topic, partition and offset."""

    submission_id: str
    family_key: str
    topic: str
    partition: int
    offset: int


#: Most items one GET /v1/feedback answer carries.
MAX_FEEDBACK_LIMIT = 1000


class FeedbackPage(BaseModel):
    """200 body of GET /v1/feedback: the team's items changed after `since`, and the cursor to go on with."""

    items: list[FieldFeedback]
    next_cursor: str
    more: bool


def _problem(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    # Every error is RFC 9457 problem+json (services/gateway/problems.py).
    return problem(status, detail, headers)


_bearer = HTTPBearer(auto_error=False, description="the enumerator team's token")


async def authenticated_team(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> TeamGrant | None:
    """The team (and regions) of the request's bearer token, None when missing or unknown (401)."""
    tokens: TeamTokens = request.app.state.tokens
    return tokens.grant_for(credentials.credentials if credentials else None)


def build_app(
    settings: GatewaySettings,
    *,
    producer: SubmissionProducer | None = None,
    registry: CollectorRegistry | None = None,
    feedback: FeedbackSource | None = None,
) -> FastAPI:
    """Compose the gateway: settings in, a FastAPI app out. Tests pass their own `producer` and `registry`.

    Metrics go to `registry` (a fresh one by default, never the process-global one, so two apps in
    one test process do not collide) and are served at /metrics.
    """
    tokens = TeamTokens(settings.grants())
    if tokens.unrestricted():
        log.warning(
            "%d team tokens carry no regions and may write every region; give each team its regions (docs/gateway.md)",
            tokens.unrestricted(),
        )
    sink: SubmissionProducer = producer or KafkaSubmissionProducer(
        settings.bootstrap,
        settings.topic,
        timeout_s=settings.produce_timeout_s,
        max_message_bytes=settings.max_body_bytes,
        connect_backoff_s=settings.connect_backoff_s,
        client_id=settings.client_id,
        security=settings.aiokafka_security(),
    )

    metrics = GatewayMetrics(registry if registry is not None else CollectorRegistry())
    if feedback is None and settings.feedback_topic:
        feedback = KafkaFeedbackReader(
            settings.bootstrap,
            settings.feedback_topic,
            FeedbackIndex(metrics),
            client_id=settings.client_id,
            security=settings.aiokafka_security(),
        )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await sink.start()
        if feedback is not None:
            await feedback.start()
        try:
            yield
        finally:
            if feedback is not None:
                await feedback.stop()
            await sink.stop()

    app = FastAPI(
        title="REGSOSEK ingest gateway",
        version=dist_version("regsosek-linkage"),
        description="Receives REGSOSEK family questionnaires from CAPI devices and stores them in Kafka.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.producer = sink
    app.state.metrics = metrics
    app.state.feedback = feedback
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(RequestIdMiddleware)  # added last = outermost: every answer carries the id
    install_problem_handlers(app)
    app.state.tokens = tokens
    checker = SubmissionChecker()

    @app.post(
        "/v1/submissions",
        status_code=202,
        response_model=SubmissionAccepted,
        summary="Submit one family questionnaire (FamilySubmission v1)",
        responses={
            401: {"model": Problem, "description": "missing or unknown bearer token"},
            403: {"model": Problem, "description": "the family lies outside the regions of the token's team"},
            413: {"model": Problem, "description": f"body larger than {settings.max_body_bytes} bytes"},
            415: {"model": Problem, "description": "Content-Type is not application/json (charset utf-8)"},
            422: {"model": ValidationProblem, "description": "not a valid FamilySubmission v1"},
            503: {"model": Problem, "description": "the broker did not confirm the submission; resend it"},
        },
        openapi_extra={"requestBody": submission_request_body()},
    )
    async def submit(request: Request, grant: Annotated[TeamGrant | None, Depends(authenticated_team)]) -> Any:
        if grant is None:
            log.info("submission refused: missing or unknown token")
            return _problem(401, "missing or unknown bearer token", {"WWW-Authenticate": "Bearer"})
        team = grant.team
        if not is_json_utf8(request.headers.get("content-type")):
            log.info("submission refused: not declared as JSON team=%s", team)
            return _problem(415, UNSUPPORTED_MEDIA_TYPE)
        try:
            body = await read_bounded_body(request, settings.max_body_bytes)
        except BodyTooLarge as exc:
            log.info("submission refused: body too large team=%s", team)
            return _problem(413, str(exc))
        checked = await checker.check(body)
        if isinstance(checked, Invalid):
            log.info("submission invalid team=%s errors=%d first_loc=%s", team, checked.total, checked.errors[0]["loc"])
            return validation_problem(checked.errors, checked.total)
        submission = checked
        family_key = submission.family_key.key
        if not grant.may_write(family_key):
            # The log names the district (a region, not personal data); the answer echoes nothing sent.
            log.info("submission refused: district %s outside the regions of team=%s", family_key[:7], team)
            return _problem(403, f"the family lies outside the regions team {team!r} may submit")
        try:
            delivery = await sink.produce(submission.kafka_key, body, [(TEAM_HEADER, team.encode())])
        except MessageTooLarge as exc:
            log.info("submission refused by the broker for its size team=%s", team)
            return _problem(413, str(exc))
        except BrokerUnavailable as exc:
            log.warning("submission not stored team=%s submission_id=%s: %s", team, submission.submission_id, exc)
            # "Not confirmed" rather than "not stored": an acknowledgement can be lost on the way back.
            detail = "the broker did not confirm storing the submission; send it again with the same submission_id"
            return _problem(503, detail, {"Retry-After": RETRY_AFTER_S})
        log.info(
            "submission stored team=%s submission_id=%s partition=%d offset=%d",
            team,
            submission.submission_id,
            delivery.partition,
            delivery.offset,
        )
        return SubmissionAccepted(
            submission_id=submission.submission_id,
            family_key=family_key,
            topic=delivery.topic,
            partition=delivery.partition,
            offset=delivery.offset,
        )

    @app.get(
        "/v1/feedback",
        response_model=FeedbackPage,
        summary="Field feedback of the token's team (FieldFeedback v1), changed after `since`",
        responses={
            400: {"model": Problem, "description": "`since` is neither a cursor of this API nor an ISO-8601 time"},
            401: {"model": Problem, "description": "missing or unknown bearer token"},
            503: {"model": Problem, "description": "the feedback index is not caught up (or not configured)"},
        },
    )
    async def list_feedback(
        grant: Annotated[TeamGrant | None, Depends(authenticated_team)],
        since: Annotated[
            str | None,
            Query(max_length=4096, description="next_cursor of the previous answer, or an ISO-8601 time with offset"),
        ] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_FEEDBACK_LIMIT, description="most items in the answer")] = 100,
    ) -> Any:
        if grant is None:
            return _problem(401, "missing or unknown bearer token", {"WWW-Authenticate": "Bearer"})
        if feedback is None or not feedback.ready():
            return _problem(503, "field feedback is not available yet; try again", {"Retry-After": RETRY_AFTER_S})
        try:
            cursor = Cursor.parse(since)
        except BadCursor as exc:
            return _problem(400, str(exc))
        shown, next_cursor, more = feedback.index.page(grant.team, cursor, limit)
        log.info("feedback served team=%s items=%d", grant.team, len(shown))
        return FeedbackPage(items=shown, next_cursor=next_cursor.encode(), more=more)

    @app.get("/healthz", summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        summary="Readiness: the broker answers and the submissions topic exists",
        responses={503: {"model": Problem, "description": "broker unreachable or topic missing"}},
    )
    async def readyz() -> Any:
        if feedback is not None and not feedback.ready():
            return _problem(503, "the field feedback index is still catching up", {"Retry-After": "1"})
        if await sink.ready():
            return {"status": "ready", "topic": settings.topic}
        return _problem(503, f"broker not ready or topic {settings.topic!r} missing", {"Retry-After": "1"})

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        # A plain route rather than a mounted sub-app: a mount answers /metrics with a redirect.
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    install_openapi(app)
    return app
