"""Labels in the pure core: reading, scoring links against them, calibrating thresholds (exact values)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from linkage.labels import (
    LabelsInputError,
    MemberLabels,
    calibrate_thresholds,
    evaluate_against_labels,
    label_keys,
    read_labels,
)

CURRENT = {"auto_link": 0.99999, "review": 0.01}


def test_read_labels_groups_pairs_by_record() -> None:
    table = pa.table(
        {"record_id": ["k1", "k1", "k2", "k2"], "master_record_id": ["A", "B", "C", "D"], "label": ["1", "0", "0", "0"]}
    )
    assert read_labels(table) == {
        "k1": MemberLabels("A", frozenset({"B"})),
        "k2": MemberLabels(None, frozenset({"C", "D"})),
    }


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ({"record_id": ["k"], "master_record_id": ["A"]}, "labels file has no column 'label'"),
        ({"record_id": ["k"], "master_record_id": ["A"], "label": [2]}, "row 1: label must be 1 or 0, got 2"),
        ({"record_id": ["k"], "master_record_id": [None], "label": [1]}, "row 1: record_id and master_record_id"),
        ({"record_id": ["k", "k"], "master_record_id": ["A", "B"], "label": [1, 1]}, "row 2: a second pair labelled 1"),
        (
            {
                "record_id": pa.array([], pa.string()),
                "master_record_id": pa.array([], pa.string()),
                "label": pa.array([], pa.int8()),
            },
            "labels file has no rows",
        ),
    ],
)
def test_read_labels_refuses_files_that_are_not_labels(columns: dict[str, object], message: str) -> None:
    with pytest.raises(LabelsInputError, match=message):
        read_labels(pa.table(columns))


def test_label_keys_prefer_member_key_then_family_key_and_serial() -> None:
    assert label_keys(pa.table({"record_id": ["S1/3"], "member_key": ["F-03"]})) == ["F-03"]
    fam = "3603120001000100010001"
    assert label_keys(pa.table({"record_id": ["S1/3", "x"], "family_key": [fam, None]})) == [f"{fam}-03", "x"]
    assert label_keys(pa.table({"record_id": ["S1/3"]})) == ["S1/3"]


def test_links_are_scored_per_labelled_record_at_both_levels() -> None:
    labels = {
        "right": MemberLabels("A", frozenset({"B"})),
        "other": MemberLabels("A", frozenset()),  # linked to C: wrong and missed
        "review": MemberLabels("D", frozenset()),  # right, but only in review
        "new": MemberLabels(None, frozenset({"E"})),  # linked to E in review: wrong at auto+review
        "blind": MemberLabels(None, frozenset({"F"})),  # linked to G nobody judged
        "gone": MemberLabels("H", frozenset()),  # not in the links
    }
    links = pa.table(
        {
            "member_key": ["right", "other", "review", "new", "blind", "unlabelled"],
            "master_record_id": ["A", "C", "D", "E", "G", "Z"],
            "band": ["auto_link", "auto_link", "review", "review", "auto_link", "auto_link"],
        }
    )
    ev = evaluate_against_labels(links, labels)
    assert (ev.labelled_records, ev.used, ev.unmatched, ev.labelled_pairs_used) == (6, 5, 1, 6)
    assert (ev.auto.right, ev.auto.wrong, ev.auto.missed, ev.auto.positives) == (1, 1, 2, 3)
    assert (ev.auto_review.right, ev.auto_review.wrong, ev.auto_review.missed) == (2, 2, 1)
    assert ev.unjudged == (1, 1)
    assert ev.auto.precision == 0.5 and ev.auto_review.recall == pytest.approx(2 / 3)
    with pytest.raises(LabelsInputError, match="share no record"):
        evaluate_against_labels(links.set_column(0, "member_key", pa.array(["x"] * 6)), labels)


def test_auto_link_threshold_is_the_lowest_with_labelled_precision_at_target() -> None:
    # 100 right at 0.999..0.9; then one wrong at 0.85, 40 right at 0.8..., then wrong ones below
    judged = [(0.999 - i * 0.001, True) for i in range(100)]
    judged += [(0.85, False)] + [(0.8 - i * 0.001, True) for i in range(40)]
    judged += [(0.5 - i * 0.01, False) for i in range(10)]
    cal = calibrate_thresholds(judged, CURRENT, target_precision=0.99, target_recall=0.99, min_labelled=30)
    # down to 0.761 there are 141 judged, 140 right (0.993); one more wrong (0.5) gives 140/142 = 0.986
    assert cal.thresholds["auto_link"] == pytest.approx(0.761)
    assert cal.auto_link_precision == pytest.approx(140 / 141)
    # review: 140 right ones, floor(0.01 * 140) = 1 may fall below: the second lowest right one (0.762),
    # but never above the auto-link threshold
    assert cal.thresholds["review"] == pytest.approx(0.761)
    assert cal.review_recall == 1.0
    strict = calibrate_thresholds(judged, CURRENT, target_precision=0.999, target_recall=0.99, min_labelled=30)
    assert strict.thresholds == pytest.approx({"auto_link": 0.9, "review": 0.762})  # above the wrong one at 0.85
    assert strict.review_recall == pytest.approx(139 / 140)
    assert (cal.judged, cal.kept) == (151, ())


def test_thresholds_are_kept_with_too_few_labels_or_no_threshold_meeting_the_target() -> None:
    few = calibrate_thresholds([(0.9, True)] * 10, CURRENT, min_labelled=30)
    assert few.thresholds == CURRENT and few.kept == ("auto_link", "review")
    bad = calibrate_thresholds([(0.99, False)] * 5 + [(0.9, True)] * 40, CURRENT, min_labelled=30)
    assert bad.thresholds["auto_link"] == CURRENT["auto_link"] and bad.kept == ("auto_link",)
    assert bad.thresholds["review"] == 0.9  # every right one is at 0.9
    # support: 5 right ones at 0.97 then only non-matches: fewer than 30 judged at or above any t that
    # meets the precision target, so the auto-link threshold is kept (labels from the uncertain middle)
    thin = calibrate_thresholds([(0.97, True)] * 5 + [(0.6, False)] * 95, CURRENT, min_labelled=30)
    assert thin.thresholds["auto_link"] == CURRENT["auto_link"] and "auto_link" in thin.kept
    # a calibrated review threshold never exceeds the auto-link one, which stays within its bounds
    hi = calibrate_thresholds([(1.0, True)] * 50, {"auto_link": 0.99, "review": 0.5}, min_labelled=30)
    assert hi.thresholds == {"auto_link": 0.999999, "review": 0.999999}
