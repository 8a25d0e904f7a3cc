"""The per-segmenter bar chart: bar lengths are the values, missing values draw no bar."""

import math

import torch

from lit_gradcam.evaluation.charts import BAR_HEIGHT, BAR_LENGTH, CHART_BARS, metric_bars

COLOURS = dict(CHART_BARS)


def _runs(chart: torch.Tensor, colour: tuple[int, int, int]) -> list[int]:
    """Per image row, how many pixels have exactly `colour`; rows without any dropped."""
    counts = (chart == torch.tensor(colour, dtype=torch.uint8).view(3, 1, 1)).all(0).sum(1)
    return sorted({int(c) for c in counts if c > 0})


def test_bars_are_as_long_as_their_values() -> None:
    rows = [
        {"segmenter": "sam", "strategy": "A", "hit_rate_fg": 1.0, "iou": 0.5},
        {"segmenter": "sam", "strategy": "B", "hit_rate_fg": 0.25, "iou": 0.75},
    ]
    chart = metric_bars(rows, "sam")
    assert chart.dtype == torch.uint8 and chart.shape[0] == 3
    assert chart.shape[2] > BAR_LENGTH
    legend = BAR_HEIGHT  # the legend's swatch is square
    assert _runs(chart, COLOURS["hit_rate_fg"]) == [legend, BAR_LENGTH // 4, BAR_LENGTH]
    assert _runs(chart, COLOURS["iou"]) == [legend, BAR_LENGTH // 2, 3 * BAR_LENGTH // 4]


def test_missing_and_nan_values_draw_no_bar_and_rows_add_height() -> None:
    one = [{"segmenter": "g", "strategy": "A", "hit_rate_fg": math.nan}]
    two = [*one, {"segmenter": "g", "strategy": "GT", "uses_ground_truth": True, "iou": 0.0}]
    for colour in COLOURS.values():
        assert _runs(metric_bars(one, "g"), colour) == [BAR_HEIGHT]  # the legend only
    assert metric_bars(two, "g").shape[1] > metric_bars(one, "g").shape[1]
