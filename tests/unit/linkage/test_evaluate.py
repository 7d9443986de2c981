"""Evaluation metrics on a hand-made links/truth pair with known numbers."""

from __future__ import annotations

import pyarrow as pa
import pytest

from linkage.evaluate import evaluate_links, format_side_by_side

TRUTH = pa.table(
    {
        "source": ["member"] * 6,
        "record_id": ["r1", "r2", "r3", "r4", "r5", "r6"],
        "member_key": [None] * 6,
        "true_nik": ["n1", "n2", "n3", "n4", None, "n6"],
        "noise": ["", "nik_missing", "nik_missing|name_variant", "", "not_in_master", "dob_swapped"],
    }
)
LINKS = pa.table(
    {
        "record_id": ["r1", "r2", "r3", "r4", "r5", "r6", "other"],
        "master_record_id": ["n1", "n2", "nX", "n4", "n9", None, "n7"],
        "match_probability": [1.0, 0.999, 0.995, 0.7, 0.6, None, 1.0],
        "match_weight": [30.0, 12.0, 9.0, 1.0, 0.5, None, 30.0],
        "band": ["auto_link", "auto_link", "auto_link", "review", "review", "no_match", "auto_link"],
    }
)


def test_metrics_have_the_exact_values() -> None:
    ev = evaluate_links(LINKS, TRUTH)
    assert ev.records == 6  # "other" is not in the truth
    # auto: 3 links (r1, r2, r3), 2 correct; 5 records have a true master
    assert (ev.auto.links, ev.auto.correct, ev.auto.positives) == (3, 2, 5)
    assert ev.auto.precision == pytest.approx(2 / 3)
    assert ev.auto.recall == pytest.approx(2 / 5)
    assert ev.auto.f1 == pytest.approx(2 * (2 / 3) * (2 / 5) / (2 / 3 + 2 / 5))
    # auto+review adds r4 (right) and r5 (a person not in the master: wrong)
    assert (ev.auto_review.links, ev.auto_review.correct) == (5, 3)
    assert ev.band_share == pytest.approx({"auto_link": 0.5, "review": 2 / 6, "no_match": 1 / 6})
    # no NIK: r2 right, r3 wrong
    assert (ev.no_nik_records, ev.no_nik_recall) == (2, 0.5)
    assert ev.errors_by_noise == {
        "clean": (1, 2),  # r4 was only sent to review: a missed auto-link
        "dob_swapped": (1, 1),
        "name_variant": (1, 1),
        "nik_missing": (1, 2),
        "not_in_master": (0, 1),  # r5 was not auto-linked, so no auto-level error
    }


def test_side_by_side_table_has_one_column_per_model() -> None:
    ev = evaluate_links(LINKS, TRUTH)
    text = format_side_by_side({"normalised": ev, "plain Splink": ev})
    lines = text.splitlines()
    assert lines[0].split() == ["metric", "normalised", "plain", "Splink"]
    rows = {" ".join(line.split()[:-2]): line.split()[-2:] for line in lines[1:] if len(line.split()) > 2}
    assert rows["auto-link precision"] == ["0.6667", "0.6667"]
    assert rows["auto+review recall"] == ["0.6000", "0.6000"]
    assert rows["nik_missing"] == ["1/2", "1/2"]
