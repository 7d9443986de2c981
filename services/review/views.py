"""What a task page shows: the survey member beside its candidates, aligned fields, NIK parts, waterfall.

Pure functions from stored records to plain dictionaries the templates render; nothing here logs.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import Any

from contracts.linkage_outputs import ReviewCandidate, ReviewTask
from contracts.review_decisions import ReviewDecision, ReviewerRole, ReviewOutcome, ShownCandidate
from services.review.nik import decode_nik, mask_nik, nik_mismatches
from services.review.store import held_decision_id
from services.review.users import Reviewer

#: The aligned rows of the comparison table: label, member field, candidate field.
FIELDS = (
    ("Name", "name"),
    ("Sex", "sex"),
    ("Birth date", "birth_date"),
    ("NIK", "nik"),
    ("Relationship", "relationship"),
    ("Village", "village"),
)
_RELATIONSHIP = {
    1: "head",
    2: "spouse",
    3: "child",
    4: "child-in-law",
    5: "grandchild",
    6: "parent",
    7: "domestic worker",
    8: "other",
}


@dataclass
class Column:
    """One column of the comparison: the member (rank 0) or a candidate."""

    rank: int
    title: str
    values: dict[str, str]
    nik_parts: dict[str, str] = field(default_factory=dict)
    differs: set[str] = field(default_factory=set)
    probability: float | None = None
    match_weight: float | None = None
    waterfall: list[dict[str, Any]] = field(default_factory=list)
    kk_members: list[dict[str, str]] = field(default_factory=list)
    raw_nik: str | None = None


def candidates_of(task: ReviewTask, limit: int) -> list[ReviewCandidate]:
    """The ranked candidates (the task's list, or its single best candidate), at most `limit`."""
    if task.candidates:
        return sorted(task.candidates, key=lambda c: c.rank)[:limit]
    if task.candidate_nik is None:
        return []
    return [
        ReviewCandidate(
            rank=1,
            nik=task.candidate_nik,
            person_id=task.candidate_person_id,
            probability=task.probability,
            match_weight=task.match_weight,
            explanation=task.explanation,
        )
    ]


def shown_of(candidates: list[ReviewCandidate]) -> list[ShownCandidate]:
    """What the decision records as shown."""
    return [
        ShownCandidate(
            rank=c.rank, record_id=c.nik, person_id=c.person_id, probability=c.probability, match_weight=c.match_weight
        )
        for c in candidates
    ]


def survey_member(submission: dict[str, Any] | None, serial: int) -> dict[str, Any] | None:
    """The member with `serial` from a stored submission."""
    if submission is None:
        return None
    return next((m for m in submission["members"] if m["serial"] == serial), None)


def _norm(value: str) -> str:
    text = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode().lower()
    return " ".join(text.replace(".", " ").split())


def _member_values(member: dict[str, Any] | None, village: str, role: ReviewerRole) -> dict[str, str]:
    if member is None:
        return {key: "?" for _, key in FIELDS}
    bd = member.get("birth_date") or {}
    date = "-".join(f"{bd.get(p):0{w}d}" if bd.get(p) else "?" * w for p, w in (("year", 4), ("month", 2), ("day", 2)))
    return {
        "name": member["name"],
        "sex": {1: "M", 2: "F"}.get(member.get("sex") or 0, "?"),
        "birth_date": date,
        "nik": mask_nik(member.get("nik"), role),
        "relationship": _RELATIONSHIP.get(member.get("relationship") or 0, "?"),
        "village": village,
    }


def _candidate_values(row: dict[str, Any] | None, nik: str, role: ReviewerRole) -> dict[str, str]:
    if row is None:
        return {
            "name": "(not in master file)",
            "sex": "?",
            "birth_date": "?",
            "nik": mask_nik(nik, role),
            "relationship": "?",
            "village": "?",
        }
    return {
        "name": row["full_name"],
        "sex": row["sex"],
        "birth_date": row["birth_date"],
        "nik": mask_nik(nik, role),
        "relationship": (row.get("relationship") or "?").lower(),
        "village": row.get("village_code") or "?",
    }


def _differs(member: dict[str, str], candidate: dict[str, str]) -> set[str]:
    out = set()
    for _, key in FIELDS:
        a, b = member.get(key, "?"), candidate.get(key, "?")
        if key in ("nik", "village", "relationship") or "?" in (a, b):
            continue  # NIKs are compared by their decoded parts; codes of two registries are not comparable
        if key == "birth_date":
            if any(x != y and "?" not in x + y for x, y in zip(a.split("-"), b.split("-"), strict=False)):
                out.add(key)
        elif _norm(a) != _norm(b):
            out.add(key)
    return out


def waterfall(total: float | None, explanation: dict[str, float]) -> list[dict[str, Any]]:
    """Bars from the prior to the total match weight: each comparison moves the running sum."""
    if not explanation:
        return []
    parts = sum(explanation.values())
    prior = (total - parts) if total is not None else 0.0
    steps: list[tuple[str, float, float]] = [("prior", 0.0, prior)]
    running = prior
    for name, weight in sorted(explanation.items(), key=lambda kv: -abs(kv[1])):
        steps.append((name, running, running + weight))
        running += weight
    steps.append(("total", 0.0, running))
    lo = min(0.0, *(min(a, b) for _, a, b in steps))
    hi = max(0.0, *(max(a, b) for _, a, b in steps))
    span = (hi - lo) or 1.0
    # Positions in percent of the chart width, for the template.
    bars = [
        {
            "label": label,
            "value": end - start if label != "total" else end,
            "left": round(100 * (min(start, end) - lo) / span, 2),
            "width": max(round(100 * abs(end - start) / span, 2), 0.5),
        }
        for label, start, end in steps
    ]
    return bars


def columns(
    task: ReviewTask,
    candidates: list[ReviewCandidate],
    submission: dict[str, Any] | None,
    master: dict[str, dict[str, Any]],
    kk: dict[str, list[dict[str, Any]]],
    role: ReviewerRole,
) -> list[Column]:
    """The member column followed by one column per candidate, with differences marked."""
    family_key, serial = task.member_key[:22], int(task.member_key[-2:])
    member = survey_member(submission, serial)
    member_nik = member.get("nik") if member else None
    m_values = _member_values(member, family_key[:10], role)
    m_decoded = decode_nik(member_nik)
    out = [
        Column(
            0,
            "Survey member",
            m_values,
            nik_parts=_parts(m_decoded),
            raw_nik=member_nik if role is ReviewerRole.SUPERVISOR else None,
        )
    ]
    for c in candidates:
        row = master.get(c.nik)
        values = _candidate_values(row, c.nik, role)
        c_decoded = decode_nik(c.nik)
        differs = _differs(m_values, values) | {f"nik_{p}" for p in nik_mismatches(m_decoded, c_decoded)}
        if member_nik and member_nik != c.nik:
            differs.add("nik")
        kk_rows = kk.get(row["kk_number"], []) if row else []
        out.append(
            Column(
                c.rank,
                f"Candidate {c.rank}",
                values,
                nik_parts=_parts(c_decoded),
                differs=differs,
                probability=c.probability,
                match_weight=c.match_weight,
                waterfall=waterfall(c.match_weight, c.explanation),
                kk_members=[
                    {
                        "name": r["full_name"],
                        "sex": r["sex"],
                        "birth_date": r["birth_date"],
                        "relationship": (r.get("relationship") or "").lower(),
                        "is_candidate": r["nik"] == c.nik,
                    }
                    for r in kk_rows
                ],
                raw_nik=c.nik if role is ReviewerRole.SUPERVISOR else None,
            )
        )
    return out


def _parts(decoded: Any) -> dict[str, str]:
    if decoded is None:
        return {"region_code": "?", "region": "unreadable or missing", "birth_date": "?", "sex": "?"}
    return {
        "region_code": decoded.region_code or "?",
        "region": decoded.region or "?",
        "birth_date": decoded.birth_date or "?",
        "sex": decoded.sex or "?",
    }


def family_context(submission: dict[str, Any] | None, serial: int) -> list[dict[str, str]]:
    """The other members of the survey family (name, sex, age, relationship)."""
    if submission is None:
        return []
    return [
        {
            "serial": f"{m['serial']:02d}",
            "name": m["name"],
            "sex": {1: "M", 2: "F"}.get(m.get("sex") or 0, "?"),
            "age": str(m.get("age") if m.get("age") is not None else "?"),
            "relationship": _RELATIONSHIP.get(m.get("relationship") or 0, "?"),
        }
        for m in submission["members"]
        if m["serial"] != serial
    ]


def second_review(
    task_id: str, held: ReviewDecision | None, candidates: list[ReviewCandidate], reviewer: Reviewer
) -> dict[str, Any] | None:
    """What the page says about a second-review task: the held decision (who decided what, when) and
    whether the viewer made it (then only another reviewer may decide). None: not a second review."""
    held_id = held_decision_id(task_id)
    if held_id is None:
        return None
    if held is None:
        return {"held_id": held_id, "known": False, "mine": False, "chosen_rank": None}
    rank = next((c.rank for c in candidates if c.nik == held.chosen_record_id), None)
    if held.outcome is ReviewOutcome.NEW_PERSON:
        what = "none of these (new person)"
    elif rank is not None:
        what = f"accept candidate {rank}"
    else:
        what = "accept a candidate not listed on this page"
    return {
        "held_id": held_id,
        "known": True,
        "mine": held.reviewer_id == reviewer.user_id,
        "chosen_rank": rank,
        "reviewer": held.reviewer_id,
        "role": held.reviewer_role.value,
        "what": what,
        "decided_at": held.decided_at.strftime("%Y-%m-%d %H:%M UTC"),
    }
