"""Every line the synthetic world generator writes is a valid FamilySubmission v1."""

from __future__ import annotations

from pathlib import Path

import pytest

from contracts.identity import QualityFlag
from contracts.submission import FAMILY_SUBMISSION_ADAPTER
from synthetic import NoiseProfile, generate_world


@pytest.mark.parametrize("profile_name", ["default", "noisy"])
def test_every_generated_submission_validates(tmp_path: Path, profile_name: str) -> None:
    world = generate_world(tmp_path, persons=4000, seed=5, profile=NoiseProfile.named(profile_name))
    ids: set[str] = set()
    members = 0
    flagged = 0
    with world.submissions.open(encoding="utf-8") as fh:
        for line in fh:
            submission = FAMILY_SUBMISSION_ADAPTER.validate_json(line)
            ids.add(submission.submission_id)
            members += len(submission.members)
            flagged += sum(1 for m in submission.members if m.quality_flags)
    assert len(ids) == world.submission_count
    assert members == world.member_records
    assert flagged > 0  # wrong NIKs and placeholder dates show up as warnings, never as rejections


def test_a_clean_world_carries_no_quality_flags(tmp_path: Path) -> None:
    world = generate_world(tmp_path, persons=1500, seed=6, profile=NoiseProfile.clean())
    with world.submissions.open(encoding="utf-8") as fh:
        submissions = [FAMILY_SUBMISSION_ADAPTER.validate_json(line) for line in fh]
    assert len(submissions) == world.submission_count
    # Without noise, NIKs agree with the stated sex and birth date (a real 31-12 birthday may still be
    # flagged as a possible placeholder, which is right).
    mismatch = {QualityFlag.NIK_SEX_MISMATCH, QualityFlag.NIK_BIRTH_DATE_MISMATCH}
    assert not any(set(m.quality_flags) & mismatch for s in submissions for m in s.members)
    assert all(m.nik is not None and m.sex is not None for s in submissions for m in s.members)
