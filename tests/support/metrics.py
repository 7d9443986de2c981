"""The label names no metric may have: they would carry a person or a submission (shared by the metric tests)."""

from __future__ import annotations

#: Label names that would carry a person or a submission: never allowed.
FORBIDDEN_LABELS = {
    "nik",
    "kk",
    "kk_number",
    "name",
    "full_name",
    "submission_id",
    "member_key",
    "family_key",
    "person",
    "person_id",
    "record_id",
}
