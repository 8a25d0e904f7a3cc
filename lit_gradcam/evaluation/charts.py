"""A bar chart of the results rows, drawn with Pillow: one image per segmenter, so every
strategy's hit rate and IoU read at a glance where TensorBoard shows each scalar as one dot."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

#: The bars drawn per strategy: (metric key of a results row, colour).
CHART_BARS = (("hit_rate_fg", (46, 139, 87)), ("iou", (65, 105, 225)))
#: The bars of the class-map evaluation (several classes and objects per image).
CLASS_MAP_BARS = (("object_hit_rate", (46, 139, 87)), ("miou", (65, 105, 225)))
#: Length in px of a bar whose value is 1; bars scale linearly from 0.
BAR_LENGTH = 400
BAR_HEIGHT = 14
FONT_SIZE = 14
MARGIN = 10
GRID_COLOUR = (210, 210, 210)
TEXT_COLOUR = (0, 0, 0)


def metric_bars(
    rows: Sequence[dict[str, object]],
    title: str,
    bars: Sequence[tuple[str, tuple[int, int, int]]] = CHART_BARS,
) -> Tensor:
    """uint8 (3, H, W) chart: per row (a strategy) one horizontal bar per (metric, colour) of
    `bars`, its value printed after it; a missing or NaN value gets no bar and prints "n/a"."""
    font = ImageFont.load_default(size=FONT_SIZE)
    labels = [_label(row) for row in rows]
    label_width = max((_text_width(font, text) for text in labels), default=0) + 2 * MARGIN
    row_height = len(bars) * BAR_HEIGHT + MARGIN
    top = 2 * (FONT_SIZE + MARGIN)  # title, then the legend
    width = label_width + BAR_LENGTH + _text_width(font, "0.000") + 2 * MARGIN
    height = top + len(rows) * row_height + MARGIN
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.text((MARGIN, MARGIN // 2), title, fill=TEXT_COLOUR, font=font)
    _legend(draw, font, bars, label_width, FONT_SIZE + MARGIN)
    for fraction in (0.0, 0.5, 1.0):
        x = label_width + round(fraction * BAR_LENGTH)
        draw.line([(x, top - MARGIN // 2), (x, height - MARGIN)], fill=GRID_COLOUR)
    for index, (row, label) in enumerate(zip(rows, labels, strict=True)):
        y = top + index * row_height
        draw.text((MARGIN, y), label, fill=TEXT_COLOUR, font=font)
        for bar, (key, colour) in enumerate(bars):
            _bar(draw, font, row.get(key), colour, label_width, y + bar * BAR_HEIGHT)
    return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1)


def _label(row: dict[str, object]) -> str:
    return f"{row['strategy']} (oracle)" if row.get("uses_ground_truth") else str(row["strategy"])


def _text_width(font: ImageFont.ImageFont, text: str) -> int:
    left, _, right, _ = font.getbbox(text)
    return int(math.ceil(right - left))


def _legend(
    draw: ImageDraw.ImageDraw,
    font: ImageFont.ImageFont,
    bars: Sequence[tuple[str, tuple[int, int, int]]],
    x: int,
    y: int,
) -> None:
    """A colour swatch and the metric name per bar, left to right."""
    for key, colour in bars:
        draw.rectangle([x, y + 2, x + BAR_HEIGHT - 1, y + BAR_HEIGHT - 1], fill=colour)
        draw.text((x + BAR_HEIGHT + 4, y), key, fill=TEXT_COLOUR, font=font)
        x += BAR_HEIGHT + 4 + _text_width(font, key) + 2 * MARGIN


def _bar(
    draw: ImageDraw.ImageDraw,
    font: ImageFont.ImageFont,
    value: object,
    colour: tuple[int, int, int],
    x: int,
    y: int,
) -> None:
    """One bar of `value` in [0, 1] (clamped) starting at x, its value printed after it."""
    if value is None or math.isnan(float(value)):
        draw.text((x + 2, y), "n/a", fill=TEXT_COLOUR, font=font)
        return
    length = round(min(max(float(value), 0.0), 1.0) * BAR_LENGTH)
    if length > 0:
        draw.rectangle([x, y + 1, x + length - 1, y + BAR_HEIGHT - 2], fill=colour)
    draw.text((x + length + 4, y), f"{float(value):.3f}", fill=TEXT_COLOUR, font=font)
