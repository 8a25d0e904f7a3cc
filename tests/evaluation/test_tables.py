"""The results table: oracle rows marked, missing values shown as dashes."""

from lit_gradcam.evaluation.tables import results_table


def test_results_table_marks_oracles_and_missing_values() -> None:
    rows = [
        {"segmenter": "sam", "strategy": "A", "iou": 0.5, "hit_rate_fg": 1.0},
        {"segmenter": "sam", "strategy": "GT", "uses_ground_truth": True, "iou": 0.98765},
    ]
    table = results_table(rows).splitlines()
    assert table[0].endswith("| hit_rate_fg_cam | distance_fg_cam |")
    assert table[2] == "| sam | A | 1.000 | 0.500 | – | – | – | – | – | – |"
    assert table[3].startswith("| sam | GT (oracle: uses GT) | – | 0.988 |")
