"""The best few master candidates of the members a clerk will review (`ReviewTask.candidates`).

The engine's decision names one candidate. For the review band the clerk needs the alternatives too, so
the members in that band are scored once more through the engine's public scoring stage (all their
candidate pairs) and the best `limit` master records are kept per member: the decision's own candidate
first (with its weights, which may include the engine's relative-NIK discount), then the others by raw
total match weight, ties by master NIK. Only review-band members pay for this second pass (a small share
of a batch).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from integration.port import MemberLink, RankedCandidate

#: How many candidates a review task carries by default (the review app shows 3 or more).
DEFAULT_CANDIDATES = 5


def _probability(weight: float) -> float:
    # the engine's 1 / (1 + 2^-w), stable for both signs (kept here: services may not reach into linkage
    # internals beyond the engine object's public stages)
    if weight >= 0:
        return 1.0 / (1.0 + math.pow(2.0, -weight))
    bf = math.pow(2.0, weight)
    return bf / (1.0 + bf)


def rank_review_candidates(
    engine: Any, table: pa.Table, links: Sequence[MemberLink], limit: int = DEFAULT_CANDIDATES
) -> dict[int, tuple[RankedCandidate, ...]]:
    """Candidates per index into `links` for the review-band links with a chosen candidate.

    `table` holds the engine's query rows in the same order as `links`.
    """
    todo = [i for i, link in enumerate(links) if link.band == "review" and link.master_nik]
    if not todo or limit < 1:
        return {}
    scored = engine.scoring.score(table.take(pa.array(todo, type=pa.int64())))
    names = [c.name for c in engine.parameters.comparisons]
    master = engine.master.prepared
    q = np.asarray(scored.query_index)
    totals = np.asarray(scored.scores.totals, dtype=np.float64)
    weights = np.asarray(scored.scores.weights, dtype=np.float64)
    out: dict[int, tuple[RankedCandidate, ...]] = {}
    for local, index in enumerate(todo):
        link = links[index]
        assert link.master_nik is not None
        first = RankedCandidate(link.master_nik, link.probability, link.match_weight, dict(link.explanation))
        pairs = np.flatnonzero(q == local)
        others: list[tuple[float, str, int]] = []
        for p in pairs.tolist():
            nik = str(master.record_id(int(scored.master_rows[p])))
            if nik != link.master_nik:
                others.append((-float(totals[p]), nik, p))
        others.sort()
        ranked = [first]
        for negative, nik, p in others[: limit - 1]:
            explanation = {name: float(weights[c, p]) for c, name in enumerate(names)}
            ranked.append(RankedCandidate(nik, _probability(-negative), -negative, explanation))
        out[index] = tuple(ranked)
    return out
