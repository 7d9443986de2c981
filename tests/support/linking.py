"""One batch through the linker's pipeline the way its handler runs it (`SubmissionHandler.handle_pipelined`)."""

from __future__ import annotations

from collections.abc import Sequence

from contracts.submission import FamilySubmission
from services.linker.pipeline import BatchResult, SubmissionLinker
from services.linker.store import LinkStoreLike


def link_batch(
    pipeline: SubmissionLinker,
    store: LinkStoreLike,
    submissions: Sequence[FamilySubmission],
    teams: Sequence[str | None] | None = None,
    *,
    partition: int = 0,
) -> BatchResult:
    """`prelink`, then `finish` against the store's view of the batch (every family on `partition`).

    The store is not written: as in production, the caller applies `BatchResult.update`.
    """
    view = store.batch({sub.family_key.key: partition for sub in submissions})
    return pipeline.finish(pipeline.prelink(submissions, teams), view)
