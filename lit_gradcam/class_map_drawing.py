"""Pictures of class maps, as uint8 tensors: a colour per class (VOC's palette), class-map
overlays, a legend naming the classes, and the grid of the multi-class evaluation."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from torch import Tensor
from torchvision.utils import make_grid

from lit_gradcam.drawing import blend, draw_prompts, heat_colours
from lit_gradcam.fonts import text_font
from lit_gradcam.prompt_types import Prompts

#: Class map value of pixels the ground truth leaves out (VOC's "void").
IGNORED = 255
IGNORED_COLOUR = (224, 224, 192)
FONT_SIZE = 12
SWATCH = 12
MARGIN = 6


def class_colours(count: int) -> Tensor:
    """uint8 (count, 3): VOC's palette (bit-interleaved index), index 0 black = background."""
    colours = np.zeros((count, 3), dtype=np.uint8)
    for index in range(count):
        value, shift = index, 7
        while value:
            for channel in range(3):
                colours[index, channel] |= ((value >> channel) & 1) << shift
            value >>= 3
            shift -= 1
    return torch.from_numpy(colours)


def class_map_colours(class_maps: Tensor, num_classes: int) -> Tensor:
    """uint8 (B, 3, H, W) colours of class maps (B, H, W) (0 background, 1..C classes, 255
    ignored)."""
    palette = torch.cat([class_colours(num_classes + 1), torch.tensor([IGNORED_COLOUR])])
    values = class_maps.long().cpu()
    index = torch.where(values == IGNORED, num_classes + 1, values.clamp(max=num_classes))
    return palette[index].permute(0, 3, 1, 2).to(class_maps.device)


def class_map_overlay(images: Tensor, class_maps: Tensor, num_classes: int) -> Tensor:
    """The images with each class's pixels tinted its colour, background left as it is."""
    colours = class_map_colours(class_maps, num_classes)
    tinted = blend(images, colours, 0.6)
    return torch.where((class_maps != 0)[:, None], tinted, images)


def legend(entries: Sequence[tuple[int, str]], width: int) -> Tensor:
    """uint8 (3, h, width): per (class map value, name) entry a swatch of the value's colour
    and the name, in rows."""
    font = text_font(FONT_SIZE)
    colours = class_colours(max(value for value, _ in entries) + 1).tolist()
    entries = [(SWATCH + MARGIN + int(font.getlength(n)) + 2 * MARGIN, v, n) for v, n in entries]
    rows, x = [[]], MARGIN
    for entry in entries:
        if x + entry[0] > width and rows[-1]:
            rows.append([])
            x = MARGIN
        rows[-1].append(entry)
        x += entry[0]
    height = len(rows) * (SWATCH + MARGIN) + MARGIN
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    for row, entries_of_row in enumerate(rows):
        x, y = MARGIN, MARGIN + row * (SWATCH + MARGIN)
        for entry_width, value, name in entries_of_row:
            draw.rectangle([x, y, x + SWATCH, y + SWATCH], fill=tuple(colours[value]), outline=0)
            draw.text((x + SWATCH + MARGIN, y - 1), name, fill=(0, 0, 0), font=font)
            x += entry_width
    return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1)


def class_map_grid(
    images: Tensor,
    heatmaps: Tensor,
    prompts: Prompts,
    class_maps: Tensor,
    gt_maps: Tensor,
    classes: Sequence[str],
    scale: int = 4,
) -> Tensor:
    """One row per image: input | CAM of its classes with the prompts | predicted class map |
    ground truth; the legend below. uint8 (3, H', W'), panels upscaled `scale` times."""
    count = len(classes)
    overlay = blend(images, heat_colours(heatmaps), 0.5)
    panels = [
        images,
        draw_prompts(overlay, prompts),
        class_map_overlay(images, class_maps, count),
        class_map_overlay(images, gt_maps, count),
    ]
    rows = torch.stack(panels, 1).flatten(0, 1).cpu()
    rows = F.interpolate(rows.float(), scale_factor=scale, mode="nearest").to(torch.uint8)
    grid = make_grid(rows, nrow=len(panels), padding=2, pad_value=255)
    entries = [(0, "background")] + [(i + 1, name) for i, name in enumerate(classes)]
    return torch.cat([grid, legend(entries, grid.shape[-1])], 1)
