"""Training prompts drawn from ground-truth masks, in original-image pixels, batched on the device.

Each image first gets its target (`choose_targets`): one of its objects, or, for some images
prompted by one point alone, nothing, the point then put on no object but within a few pixels
of one. A point that misses an object thus trains to an empty mask, as SAM given a point on the
backdrop returns the backdrop there, never the object beside it. A training batch is split
among prompt modes, each mode a group with one prompt layout (so each group is one batched
decoder call): one foreground point (ambiguous, so SAM's three candidates are scored), several
foreground points, foreground plus background points, a jittered box, and a jittered box with
a foreground point.
`correction_clicks` adds one point in the error region of a
prediction, labelled by the ground truth there, as SAM's interactive training does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from lit_gradcam.prompt_types import BACKGROUND, FOREGROUND, Prompts
from lit_gradcam.prompts.geometry import flat_to_xy, lookup, mask_boxes

#: Prompt modes; "point" alone is ambiguous and trained with the best of three masks.
MODES = ("point", "points", "points_background", "box", "box_point")
#: Objects with fewer visible pixels are never a target (a point could not find them).
MIN_TARGET_AREA = 3


def choose_targets(
    objects: Tensor, background_share: float, band: int
) -> tuple[Tensor, Tensor, Tensor]:
    """Each image's target (B, H, W) bool among its visible object masks (B, K, H, W), and the
    region (B, H, W) its prompt's points are drawn from. With chance `background_share`, and
    wherever no object has MIN_TARGET_AREA pixels, the target is empty and the region the
    pixels of no object within `band` pixels of one (`near_background`); else the target is
    one object drawn uniformly among those that have, and the region that object. Also returns
    which images have no target (B,) bool."""
    areas = objects.flatten(2).sum(2)
    eligible = areas >= MIN_TARGET_AREA
    batch = objects.shape[0]
    on_background = torch.rand(batch, device=objects.device) < background_share
    on_background |= ~eligible.any(1)
    weights = torch.where(eligible.any(1, keepdim=True), eligible.float(), 1.0)
    pick = torch.multinomial(weights, 1)[:, 0]
    chosen = objects[torch.arange(batch, device=objects.device), pick]
    missed = on_background[:, None, None]
    targets = torch.where(missed, torch.zeros_like(chosen), chosen)
    regions = torch.where(missed, near_background(objects, band), chosen)
    return targets, regions, on_background


def near_background(objects: Tensor, band: int) -> Tensor:
    """Pixels (B, H, W) of no object (B, K, H, W) within `band` pixels (chessboard distance)
    of one: where a point that just misses an object lands."""
    union = objects.any(1)
    near = F.max_pool2d(union[:, None].float(), 2 * band + 1, stride=1, padding=band)[:, 0] > 0
    return near & ~union


def largest_object(objects: Tensor) -> Tensor:
    """Each image's object mask (B, H, W) with the most visible pixels, of (B, K, H, W)."""
    pick = objects.flatten(2).sum(2).argmax(1)
    return objects[torch.arange(objects.shape[0], device=objects.device), pick]


def sample_pixels(regions: Tensor, count: int) -> Tensor:
    """(B, count, 2) (x, y) pixels drawn uniformly, with replacement, from each region
    (B, H, W) bool; from the whole image where a region is empty."""
    if count == 0:
        return regions.new_zeros(regions.shape[0], 0, 2, dtype=torch.float)
    weights = regions.flatten(1).float()
    weights = torch.where(weights.sum(1, keepdim=True) > 0, weights, torch.ones_like(weights))
    return flat_to_xy(torch.multinomial(weights, count, replacement=True), regions.shape[-1])


def jittered_boxes(masks: Tensor, jitter: float, max_jitter: float) -> Tensor:
    """(B, 4) tight boxes of `masks` with Gaussian noise on each side: std `jitter` x the box's
    side, at most `max_jitter` pixels, clamped into the image (SAM's box augmentation)."""
    height, width = masks.shape[-2:]
    boxes = mask_boxes(masks)
    sides = (boxes[:, 2:] - boxes[:, :2] + 1).repeat(1, 2)
    noisy = boxes + torch.randn_like(boxes) * (jitter * sides).clamp(max=max_jitter)
    limit = noisy.new_tensor([width - 1, height - 1, width - 1, height - 1])
    noisy = noisy.clamp(min=torch.zeros_like(limit), max=limit)
    low = torch.minimum(noisy[:, :2], noisy[:, 2:])
    high = torch.maximum(noisy[:, :2], noisy[:, 2:])
    return torch.cat([low, high], 1)


def sample_prompts(
    masks: Tensor, mode: str, max_points: int, jitter: float, max_jitter: float
) -> Prompts:
    """Prompts of `mode` for ground-truth `masks` (B, H, W) bool; every image gets the same
    number of points (drawn once per call, 1 to `max_points` of each kind)."""
    batch = masks.shape[0]
    device = masks.device
    if mode not in MODES:
        raise ValueError(f"unknown prompt mode {mode!r}; known: {MODES}")
    n_fg = {"point": 1, "box_point": 1, "box": 0}.get(mode)
    if n_fg is None:
        low = 2 if mode == "points" else 1
        n_fg = int(torch.randint(low, max(max_points, low) + 1, ()).item())
    n_bg = int(torch.randint(1, max_points + 1, ()).item()) if mode == "points_background" else 0
    points = torch.cat([sample_pixels(masks, n_fg), sample_pixels(~masks, n_bg)], 1)
    labels = torch.cat(
        [
            torch.full((batch, n_fg), FOREGROUND, dtype=torch.long, device=device),
            torch.full((batch, n_bg), BACKGROUND, dtype=torch.long, device=device),
        ],
        1,
    )
    boxes = jittered_boxes(masks, jitter, max_jitter) if mode.startswith("box") else None
    return Prompts(points, labels, boxes)


def correction_clicks(prompts: Prompts, predicted: Tensor, masks: Tensor) -> Prompts:
    """`prompts` plus one click per image drawn from the error region of `predicted` (B, H, W)
    bool against `masks`: foreground where the shape was missed, background where the mask
    spilled over (anywhere, labelled by the ground truth, when there is no error)."""
    click = sample_pixels(predicted != masks, 1)
    label = lookup(masks, click).long()
    return Prompts(
        torch.cat([prompts.points, click], 1), torch.cat([prompts.labels, label], 1), prompts.boxes
    )


def split_modes(batch: int, mix: dict[str, float], device: torch.device) -> dict[str, Tensor]:
    """Image indices of each mode: counts proportional to `mix` (largest remainders), images
    assigned at random; modes that get no image are left out."""
    names = list(mix)
    shares = torch.tensor([mix[name] for name in names], dtype=torch.float64)
    exact = shares / shares.sum() * batch
    counts = exact.floor().long()
    leftover = batch - int(counts.sum())
    counts[(exact - counts).argsort(descending=True, stable=True)[:leftover]] += 1
    order = torch.randperm(batch, device=device)
    return {
        name: chunk
        for name, chunk in zip(names, order.split(counts.tolist()), strict=True)
        if chunk.numel()
    }
