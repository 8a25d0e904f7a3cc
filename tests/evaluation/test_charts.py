"""The per-segmenter bar chart: bar lengths are the values, missing values draw no bar, and it
is as wide as TensorBoard shows it."""

import math

import torch

from lit_gradcam.evaluation.charts import (
    BAR_HEIGHT,
    BAR_LENGTH,
    CHART_BARS,
    CHART_WIDTH,
    MARGIN,
    metric_bars,
)

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
    legend = BAR_HEIGHT  # the legend's swatch is square
    assert _runs(chart, COLOURS["hit_rate_fg"]) == [legend, BAR_LENGTH // 4, BAR_LENGTH]
    assert _runs(chart, COLOURS["iou"]) == [legend, BAR_LENGTH // 2, 3 * BAR_LENGTH // 4]


def test_missing_and_nan_values_draw_no_bar_and_rows_add_height() -> None:
    one = [{"segmenter": "g", "strategy": "A", "hit_rate_fg": math.nan}]
    two = [*one, {"segmenter": "g", "strategy": "GT", "uses_ground_truth": True, "iou": 0.0}]
    for colour in COLOURS.values():
        assert _runs(metric_bars(one, "g"), colour) == [BAR_HEIGHT]  # the legend only
    assert metric_bars(two, "g").shape[1] > metric_bars(one, "g").shape[1]


def test_the_chart_is_as_wide_as_tensorboards_image_card_whatever_the_names() -> None:
    """TensorBoard's IMAGES tab scales an image to its card's width, nearest-neighbour: at that
    width the chart shows as drawn. A name too long for it is cut inside the right margin, as
    is every value printed after a full bar."""
    rows = [{"segmenter": "g", "strategy": "ForegroundBackground" * 4, "hit_rate_fg": 1.0}]
    chart = metric_bars(rows, "g")
    assert chart.shape[2] == CHART_WIDTH
    ink = (chart < 100).all(0).any(0).nonzero()  # columns holding text
    assert int(ink.max()) < CHART_WIDTH - MARGIN
