"""A bar chart of the results rows, drawn with Pillow: one image per segmenter, so every
strategy's hit rate and IoU read at a glance where TensorBoard shows each scalar as one dot.

The chart is drawn at the width TensorBoard's IMAGES tab gives an image card (`CHART_WIDTH`),
which scales every image to that width with nearest-neighbour sampling: a wider chart loses
rows of its letters there, one this wide shows every pixel as drawn. Each strategy takes a line
for its name and one bar per metric below it, so long names get the full width.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

from lit_gradcam.fonts import text_font

#: The bars drawn per strategy: (metric key of a results row, colour).
CHART_BARS = (("hit_rate_fg", (46, 139, 87)), ("iou", (65, 105, 225)))
#: The bars of the class-map evaluation (several classes and objects per image).
CLASS_MAP_BARS = (("object_hit_rate", (46, 139, 87)), ("miou", (65, 105, 225)))
#: Width in px of TensorBoard's image card (IMAGES tab, `tf-image-loader`), the chart's width.
CHART_WIDTH = 350
#: Length in px of a bar whose value is 1; bars scale linearly from 0.
BAR_LENGTH = 280
BAR_HEIGHT = 14
FONT_SIZE = 14
MARGIN = 8
GAP = 4  # between a bar and its value, a swatch and its name
GRID_COLOUR = (210, 210, 210)
TEXT_COLOUR = (0, 0, 0)


def metric_bars(
    rows: Sequence[dict[str, object]],
    title: str,
    bars: Sequence[tuple[str, tuple[int, int, int]]] = CHART_BARS,
) -> Tensor:
    """uint8 (3, H, `CHART_WIDTH`) chart: per row (a strategy) its name, then one horizontal bar
    per (metric, colour) of `bars` with its value printed after it; a missing or NaN value gets
    no bar and prints "n/a"."""
    font = text_font(FONT_SIZE)
    line = FONT_SIZE + GAP  # one line of text
    row_height = line + len(bars) * BAR_HEIGHT + MARGIN
    top = MARGIN + 2 * line + GAP  # title, then the legend
    height = top + len(rows) * row_height
    image = Image.new("RGB", (CHART_WIDTH, height), "white")
    draw = ImageDraw.Draw(image)
    text_width = CHART_WIDTH - 2 * MARGIN
    draw.text((MARGIN, MARGIN), _fit(font, title, text_width), fill=TEXT_COLOUR, font=font)
    _legend(draw, font, bars, MARGIN, MARGIN + line)
    for fraction in (0.0, 0.5, 1.0):
        x = MARGIN + round(fraction * BAR_LENGTH)
        draw.line([(x, top - GAP), (x, height - MARGIN)], fill=GRID_COLOUR)
    for index, row in enumerate(rows):
        y = top + index * row_height
        draw.text((MARGIN, y), _fit(font, _label(row), text_width), fill=TEXT_COLOUR, font=font)
        for bar, (key, colour) in enumerate(bars):
            _bar(draw, font, row.get(key), colour, MARGIN, y + line + bar * BAR_HEIGHT)
    return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1)


def _label(row: dict[str, object]) -> str:
    return f"{row['strategy']} (oracle)" if row.get("uses_ground_truth") else str(row["strategy"])


def _text_width(font: ImageFont.FreeTypeFont, text: str) -> int:
    left, _, right, _ = font.getbbox(text)
    return int(math.ceil(right - left))


def _fit(font: ImageFont.FreeTypeFont, text: str, width: int) -> str:
    """`text`, cut and ended with "…" where it is wider than `width` px."""
    if _text_width(font, text) <= width:
        return text
    while text and _text_width(font, text + "…") > width:
        text = text[:-1]
    return text + "…"


def _legend(
    draw: ImageDraw.ImageDraw,
    font: ImageFont.FreeTypeFont,
    bars: Sequence[tuple[str, tuple[int, int, int]]],
    x: int,
    y: int,
) -> None:
    """A colour swatch and the metric name per bar, left to right."""
    for key, colour in bars:
        draw.rectangle([x, y + 2, x + BAR_HEIGHT - 1, y + BAR_HEIGHT + 1], fill=colour)
        draw.text((x + BAR_HEIGHT + GAP, y), key, fill=TEXT_COLOUR, font=font)
        x += BAR_HEIGHT + GAP + _text_width(font, key) + 2 * MARGIN


def _bar(
    draw: ImageDraw.ImageDraw,
    font: ImageFont.FreeTypeFont,
    value: object,
    colour: tuple[int, int, int],
    x: int,
    y: int,
) -> None:
    """One bar of `value` in [0, 1] (clamped) starting at x, its value printed after it."""
    if value is None or math.isnan(float(value)):
        draw.text((x + 2, y - 2), "n/a", fill=TEXT_COLOUR, font=font)
        return
    length = round(min(max(float(value), 0.0), 1.0) * BAR_LENGTH)
    if length > 0:
        draw.rectangle([x, y + 1, x + length - 1, y + BAR_HEIGHT - 2], fill=colour)
    draw.text((x + length + GAP, y - 2), f"{float(value):.3f}", fill=TEXT_COLOUR, font=font)
