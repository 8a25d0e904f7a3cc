"""The results tables: oracle rows marked, missing values shown as dashes; the headline picks
the best no-click and oracle rows, and TensorBoard's table keeps few columns."""

from lit_gradcam.evaluation.tables import (
    CLASS_MAP_COMPACT_COLUMNS,
    COMPACT_COLUMNS,
    Headline,
    compact_table,
    results_table,
)

ROWS = [
    {"segmenter": "sam", "strategy": "A", "iou": 0.5, "hit_rate_fg": 1.0, "worth_clicks": 0.4},
    {"segmenter": "sam", "strategy": "B", "iou": 0.75, "hit_rate_fg": 0.5, "worth_clicks": None},
    {"segmenter": "sam", "strategy": "C", "iou": None, "hit_rate_fg": 0.25},
    {"segmenter": "sam", "strategy": "GT", "uses_ground_truth": True, "iou": 0.98765},
]


def test_results_table_marks_oracles_and_missing_values() -> None:
    rows = [
        {"segmenter": "sam", "strategy": "A", "iou": 0.5, "hit_rate_fg": 1.0},
        {"segmenter": "sam", "strategy": "GT", "uses_ground_truth": True, "iou": 0.98765},
    ]
    table = results_table(rows).splitlines()
    assert table[0].endswith("| hit_rate_fg_cam | distance_fg_cam |")
    assert table[2] == "| sam | A | 1.000 | 0.500 | – | – | – | – | – | – |"
    assert table[3].startswith("| sam | GT (oracle: uses GT) | – | 0.988 |")


def test_the_headline_is_the_best_scored_row_of_each_kind() -> None:
    """B beats A on IoU and C has none; its worth in clicks is B's own, None here."""
    headline = Headline.of(ROWS, "iou", accuracy=0.9)
    assert headline.no_click is ROWS[1] and headline.oracle is ROWS[3]
    assert headline.clicked and headline.worth_clicks is None
    assert headline.as_dict() == {
        "accuracy": 0.9,
        "no_click": "sam / B",
        "no_click_iou": 0.75,
        "oracle": "sam / GT",
        "oracle_iou": 0.98765,
        "worth_clicks": None,
    }
    best_a = Headline.of([ROWS[0], ROWS[3]], "iou", accuracy=None)
    assert best_a.worth_clicks == 0.4
    unclicked = Headline.of([{"segmenter": "g", "strategy": "A", "miou": 0.3}], "miou", 1.0)
    assert not unclicked.clicked and unclicked.oracle is None
    assert unclicked.as_dict() == {
        "accuracy": 1.0,
        "no_click": "g / A",
        "no_click_miou": 0.3,
        "oracle": None,
        "oracle_miou": None,
    }


def test_tensorboards_table_has_the_headline_and_only_the_columns_rows_have() -> None:
    table = compact_table(ROWS, COMPACT_COLUMNS, Headline.of(ROWS, "iou", 0.9))
    assert table.splitlines() == [
        "- accuracy **0.900**",
        "- best no-click: sam / B, iou **0.750**",
        "- best oracle: sam / GT, iou **0.988**",
        "",
        "| segmenter | strategy | iou | hit_rate_fg | worth_clicks |",
        "|---|---|---|---|---|",
        "| sam | A | 0.500 | 1.000 | 0.400 |",
        "| sam | B | 0.750 | 0.500 | – |",
        "| sam | C | – | 0.250 | – |",
        "| sam | GT (oracle) | 0.988 | – | – |",
    ]
    rows = [{"segmenter": "g", "strategy": "A", "miou": 0.3, "object_hit_rate": 0.5}]
    headline = Headline.of(rows, "miou", 1.0)
    header = compact_table(rows, CLASS_MAP_COMPACT_COLUMNS, headline).splitlines()[3]
    assert header == "| segmenter | strategy | miou | object_hit_rate |"
    clicked = Headline.of(ROWS[:1], "iou", 0.9).markdown().splitlines()[1]
    assert clicked == "- best no-click: sam / A, iou **0.500**, worth 0.40 clicks"
