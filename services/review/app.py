"""The review web app: login, queue, task page, decisions (server-rendered, Jinja2 templates).

Composition root `build_app(settings, ...)`: tests pass fakes for the store, producer, users, master and
clock; `regsosek serve review` passes nothing and gets the real ones. Every POST needs the session's
CSRF token; a page answers clear errors (401/403/404/409/503) and never echoes personal values.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from prometheus_client import CollectorRegistry

from contracts.review_decisions import ReviewerRole, ReviewOutcome
from services.kafka.io import JsonProducer
from services.observability.exposition import metrics_asgi_app
from services.review import views
from services.review.deciding import Decider, Producer
from services.review.ingest import Ingest
from services.review.master import MasterLookup, NoMaster, ParquetMaster
from services.review.metrics import MetricsMiddleware, ReviewMetrics
from services.review.sessions import LOGIN_COOKIE, SESSION_COOKIE, Session, Sessions, csrf_ok
from services.review.settings import ReviewSettings
from services.review.store import Backlog, DecisionRefused, QueueFilter, ReviewStore
from services.review.users import UserStore

log = logging.getLogger("regsosek.review")
TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
_MAX_FORM = 16 * 1024
_ACTIONS = {"accept": ReviewOutcome.ACCEPT, "new_person": ReviewOutcome.NEW_PERSON, "skip": ReviewOutcome.SKIP}


class _Refusal(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message


def build_app(
    settings: ReviewSettings,
    *,
    store: ReviewStore | None = None,
    producer: Producer | None = None,
    users: UserStore | None = None,
    master: MasterLookup | None = None,
    registry: CollectorRegistry | None = None,
    clock: Callable[[], dt.datetime] | None = None,
    ingest: bool = True,
) -> FastAPI:
    """The review app. Absent parts are built from `settings` (SQLite state, Kafka, users file, master)."""
    store = store or ReviewStore(settings.state_path)
    users = users if users is not None else UserStore.load(settings.users_file)
    master = master or (ParquetMaster(settings.master_path) if settings.master_path else NoMaster())
    now = clock or (lambda: dt.datetime.now(dt.UTC).replace(microsecond=0))

    def backlog() -> tuple[Backlog, int]:
        now_ms = int(now().timestamp() * 1000)
        return store.backlog(now_ms), now_ms

    metrics = ReviewMetrics(registry or CollectorRegistry(), backlog)
    sessions = Sessions(settings.session_ttl_s)
    holder: dict[str, Producer] = {}

    def get_producer() -> Producer:
        if producer is not None:
            return producer
        if "p" not in holder:  # connected on first use, so the pages work while the broker is away
            holder["p"] = JsonProducer(
                settings.bootstrap,
                client_id=settings.client_id,
                timeout_s=settings.produce_timeout_s,
                **settings.kafka_python_security(),
            )
        return holder["p"]

    decider = Decider(store, get_producer, settings.decisions_topic, metrics, now)

    def counted(counts: dict[str, int], _rejected: int) -> None:
        for kind, n in counts.items():
            metrics.ingested.labels(kind=kind).inc(n)

    feed = Ingest(settings, store, on_batch=counted)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if ingest:
            feed.start()
        try:
            flushed = decider.flush_outbox()
            if flushed:
                log.info("produced %d decisions left unacknowledged before the restart", flushed)
        except Exception as exc:  # broker away at start: the outbox is flushed on the next start
            log.warning("outbox not flushed: %s", exc.__class__.__name__)
        yield
        if ingest:
            feed.stop()
        if "p" in holder:
            holder["p"].close()  # type: ignore[attr-defined]

    app = FastAPI(title="REGSOSEK review", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    @app.middleware("http")
    async def protective_headers(request: Request, call_next: Callable[[Request], Any]) -> Response:
        response: Response = await call_next(request)
        # Pages carry names and dates of birth: never cached, never framed, no referrer to other sites.
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
            "frame-ancestors 'none'; form-action 'self'"
        )
        return response

    app.mount("/metrics", metrics_asgi_app(metrics.registry))
    app.state.store, app.state.feed, app.state.sessions = store, feed, sessions

    def page(request: Request, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        return TEMPLATES.TemplateResponse(request, name, ctx, status_code=status)

    def session_of(request: Request) -> Session | None:
        return sessions.get(request.cookies.get(SESSION_COOKIE))

    async def form_of(request: Request) -> dict[str, str]:
        body = await request.body()
        if len(body) > _MAX_FORM:
            raise _Refusal(413, "invalid", "The form is too large.")
        return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}

    async def checked(request: Request) -> tuple[Session, dict[str, str]]:
        session = session_of(request)
        if session is None:
            raise _Refusal(401, "unauthenticated", "Your login expired; log in again.")
        form = await form_of(request)
        if not csrf_ok(session.csrf, form.get("csrf")):
            raise _Refusal(403, "csrf", "The form was not issued by this session (CSRF check failed); reload.")
        return session, form

    @app.exception_handler(_Refusal)
    async def refused(request: Request, exc: _Refusal) -> Response:
        if exc.reason != "unauthenticated":  # an expired login is not a refused decision
            metrics.refused.labels(reason=exc.reason).inc()
        return page(
            request, "message.html", exc.status, title="Not done", message=exc.message, session=session_of(request)
        )

    @app.get("/healthz", response_class=PlainTextResponse)
    def healthz() -> str:
        return "ok"

    @app.get("/readyz", response_class=PlainTextResponse)
    def readyz() -> Response:
        ready = not ingest or feed.healthy
        text = "ready" if ready else "not ready (catching up or broker away)"
        return PlainTextResponse(text, status_code=200 if ready else 503)

    @app.get("/login", response_class=HTMLResponse)
    def login_form(request: Request) -> Response:
        token = secrets.token_urlsafe(32)
        response = page(request, "login.html", csrf=token, error=None, session=None)
        response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict", secure=settings.secure_cookies)
        return response

    @app.post("/login")
    async def login(request: Request) -> Response:
        form = await form_of(request)
        if not csrf_ok(request.cookies.get(LOGIN_COOKIE), form.get("csrf")):
            raise _Refusal(403, "csrf", "The login form expired (CSRF check failed); reload the page.")
        reviewer = users.verify(form.get("user", ""), form.get("password", ""))
        if reviewer is None:
            metrics.logins.labels(result="failed").inc()
            return page(
                request, "login.html", 401, csrf=form["csrf"], error="Unknown user or wrong password.", session=None
            )
        metrics.logins.labels(result="ok").inc()
        sid, _ = sessions.create(reviewer)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            sid,
            httponly=True,
            samesite="strict",
            secure=settings.secure_cookies,
            max_age=settings.session_ttl_s,
        )
        response.delete_cookie(LOGIN_COOKIE)
        return response

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        await checked(request)
        sessions.drop(request.cookies.get(SESSION_COOKIE))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    @app.get("/", response_class=HTMLResponse)
    def queue(request: Request, district: str = "", village: str = "", source: str = "", age: int = 0) -> Response:
        session = session_of(request)
        if session is None:
            return RedirectResponse("/login", status_code=303)
        flt = QueueFilter(district or None, village or None, source or None, age or None)
        now_ms = int(now().timestamp() * 1000)
        tasks = store.queue(
            flt, now_ms, limit=settings.queue_page_size, skipped_by=session.reviewer.user_id, order=settings.queue_order
        )
        open_total = store.open_count()
        shown = settings.candidates_shown
        rows = [
            {
                "task_id": t.task_id,
                "url": "/tasks/" + quote(t.task_id, safe=""),
                "district": t.district,
                "village": t.village,
                "source": t.source,
                "age_h": (now_ms - t.received_ms) // 3_600_000,
                "aid": t.aid_priority == 0,
                "probability": t.record.probability,
                "candidates": len(views.candidates_of(t.record, shown)),
            }
            for t in tasks
        ]
        return page(
            request,
            "queue.html",
            session=session,
            rows=rows,
            counts=store.counts_by_district(flt, now_ms),
            flt=flt,
            open_total=open_total,
            last=_last(session),
        )

    def _last(session: Session) -> Any:
        return store.decision(session.last_decision_id) if session.last_decision_id else None

    @app.get("/tasks/{task_id:path}", response_class=HTMLResponse)
    def task_page(request: Request, task_id: str) -> Response:
        session = session_of(request)
        if session is None:
            return RedirectResponse("/login", status_code=303)
        task = store.task(task_id)
        if task is None:
            raise _Refusal(404, "unknown_task", "There is no review task with this id.")
        candidates = views.candidates_of(task.record, settings.candidates_shown)
        master_rows = master.persons([c.nik for c in candidates])
        kk = {r["kk_number"]: master.kk_members(r["kk_number"]) for r in master_rows.values() if r.get("kk_number")}
        submission = store.family(task.family_key)
        cols = views.columns(task.record, candidates, submission, master_rows, kk, session.reviewer.role)
        second = views.second_review(task.task_id, decider.held(task), candidates, session.reviewer)
        return page(
            request,
            "task.html",
            session=session,
            task=task,
            cols=cols,
            fields=views.FIELDS,
            family=views.family_context(submission, int(task.member_key[-2:])),
            last=_last(session),
            supervisor=session.reviewer.role is ReviewerRole.SUPERVISOR,
            second=second,
        )

    @app.post("/decide")
    async def decide(request: Request) -> Response:
        session, form = await checked(request)
        task = store.task(form.get("task_id", ""))
        if task is None:
            raise _Refusal(404, "unknown_task", "There is no review task with this id; nothing was recorded.")
        outcome = _ACTIONS.get(form.get("action", ""))
        try:
            sequence, rank = int(form.get("sequence", "")), int(form.get("rank") or 0)
        except ValueError:
            raise _Refusal(400, "invalid", "The form is incomplete; reload the task.") from None
        if outcome is None:
            raise _Refusal(400, "invalid", "Unknown action.")
        shown = views.shown_of(views.candidates_of(task.record, settings.candidates_shown))
        decision = _run(lambda: decider.build(task, sequence, outcome, session.reviewer, shown, rank))
        _run(lambda: decider.decide(decision))
        session.last_decision_id = decision.decision_id
        return RedirectResponse(_next(session), status_code=303)

    @app.post("/undo")
    async def undo(request: Request) -> Response:
        session, form = await checked(request)
        previous = store.decision(form.get("decision_id", ""))
        task = store.task(previous.task_id) if previous else None
        if previous is None or task is None:
            raise _Refusal(404, "unknown_task", "There is no such decision to undo.")
        if previous.reviewer_id != session.reviewer.user_id and session.reviewer.role is not ReviewerRole.SUPERVISOR:
            raise _Refusal(403, "forbidden", "Only a supervisor may undo another reviewer's decision.")
        if previous.outcome is ReviewOutcome.UNDO or task.sequence != previous.sequence + 1:
            raise _Refusal(409, "stale", "That decision is no longer the task's latest; nothing to undo.")
        decision = _run(
            lambda: decider.build(
                task,
                task.sequence,
                ReviewOutcome.UNDO,
                session.reviewer,
                list(previous.shown),
                revokes=previous.decision_id,
            )
        )
        _run(lambda: decider.decide(decision))
        session.last_decision_id = None
        return RedirectResponse("/tasks/" + quote(task.task_id, safe="") + "?undone=1", status_code=303)

    def _next(session: Session) -> str:
        nxt = store.queue(
            QueueFilter(),
            int(now().timestamp() * 1000),
            limit=1,
            skipped_by=session.reviewer.user_id,
            order=settings.queue_order,
        )
        return ("/tasks/" + quote(nxt[0].task_id, safe="") if nxt else "/") + "?" + urlencode({"done": "1"})

    return app


def _run(step: Callable[[], Any]) -> Any:
    try:
        return step()
    except DecisionRefused as exc:
        raise _Refusal(exc.status, exc.reason, exc.message) from None
