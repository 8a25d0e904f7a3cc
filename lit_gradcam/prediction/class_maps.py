"""What `predict` writes per image for a classifier of a folder's own classes: the class map as
an index PNG (VOC's convention: a palette image whose index is the class, 0 background), an
overlay with a legend of the classes found, and the CSV row naming them with their areas."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from lit_gradcam.class_map_drawing import class_colours, class_map_overlay, legend
from lit_gradcam.drawing import draw_prompts
from lit_gradcam.prompt_types import PAD_LABEL, Prompts

#: The CSV columns of a class-map prediction.
CLASS_MAP_CSV_COLUMNS = (
    "file",
    "classes",
    "probabilities",
    "areas",
    "no_shape",
    "points",
    "mask",
    "overlay",
    "note",
    "error",
)


def save_index_png(path: Path, class_map: np.ndarray) -> None:
    """A palette PNG whose pixel indices are the class map's values, coloured as VOC's."""
    height, width = class_map.shape
    image = Image.frombytes("P", (width, height), class_map.astype(np.uint8).tobytes())
    image.putpalette(class_colours(256).flatten().tolist())
    image.save(path, format="PNG")


def class_map_files(
    staging: Path,
    name: str,
    stem: str,
    image: Tensor,
    class_map: Tensor,
    prompts: Prompts,
    point_classes: Tensor,
    found: Tensor,
    probabilities: Tensor,
    classes: Sequence[str],
) -> dict[str, str]:
    """Stage `<stem>_mask.png` (index PNG) and `<stem>_overlay.png` of one image (uint8 (3, h,
    w)) and its class map (h, w), with the prompts (a batch of one) and each point's class map
    value; return its CSV row: the classes found and their probabilities, each one's area in
    pixels, the object points ('x y class' each)."""
    mask_file, overlay_file = f"{stem}_mask.png", f"{stem}_overlay.png"
    values = class_map.cpu().numpy()
    save_index_png(staging / mask_file, values)
    radius = max(1.5, min(image.shape[-2:]) / 32)
    tinted = class_map_overlay(image[None], class_map[None], len(classes))
    overlay = draw_prompts(tinted, prompts, radius)
    present = [i for i in range(len(classes)) if found[i]]
    key = legend([(0, "background")] + [(i + 1, classes[i]) for i in present], overlay.shape[-1])
    picture = torch.cat([overlay[0].cpu(), key], 1)
    Image.fromarray(picture.permute(1, 2, 0).numpy()).save(staging / overlay_file, format="PNG")
    areas = np.bincount(values.ravel(), minlength=len(classes) + 1)
    return {
        "file": name,
        "classes": "; ".join(classes[i] for i in present),
        "probabilities": "; ".join(f"{classes[i]} {probabilities[i].item():.4f}" for i in present),
        "areas": "; ".join(f"{classes[i]} {int(areas[i + 1])}" for i in present),
        "points": _points_text(prompts, point_classes, classes),
        "mask": mask_file,
        "overlay": overlay_file,
        "error": "",
    }


def _points_text(prompts: Prompts, point_classes: Tensor, classes: Sequence[str]) -> str:
    """'x y class' per real point of image 0, ';'-separated."""
    keep = prompts.labels[0] != PAD_LABEL
    points, values = prompts.points[0][keep].tolist(), point_classes[0][keep].tolist()
    return "; ".join(
        f"{x:.1f} {y:.1f} {classes[v - 1]}" for (x, y), v in zip(points, values, strict=True)
    )
