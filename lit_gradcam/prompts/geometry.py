"""Batched pixel-grid helpers shared by the prompt strategies and the metrics.

Maps and masks are (B, H, W) tensors; points are (x, y) = (column, row) pixel coordinates, a
pixel's centre sitting at integer coordinates. Everything stays on the input's device, and every
tie is broken by a fixed rule, so the same input always gives the same points.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def pixel_grid(height: int, width: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """x (column) and y (row) coordinates of every pixel, each (1, H, W) float."""
    ys, xs = torch.meshgrid(
        torch.arange(height, device=device, dtype=torch.float32),
        torch.arange(width, device=device, dtype=torch.float32),
        indexing="ij",
    )
    return xs[None], ys[None]


def image_centre(batch: int, height: int, width: int, device: torch.device) -> Tensor:
    """(B, 2) the centre pixel (W // 2, H // 2): (W - 1) / 2 and (H - 1) / 2 rounded half up."""
    centre = torch.tensor([width // 2, height // 2], device=device, dtype=torch.float32)
    return centre.expand(batch, 2)


def distance_to(points: Tensor, height: int, width: int) -> Tensor:
    """(B, H, W) Euclidean distance in px from every pixel to each image's point (B, 2)."""
    xs, ys = pixel_grid(height, width, points.device)
    return torch.hypot(xs - points[:, 0, None, None], ys - points[:, 1, None, None])


def flat_to_xy(index: Tensor, width: int) -> Tensor:
    """Raster indices (...) -> float (x, y) points (..., 2)."""
    return torch.stack([index % width, torch.div(index, width, rounding_mode="floor")], -1).float()


def round_to_pixel(points: Tensor, height: int, width: int) -> tuple[Tensor, Tensor]:
    """Nearest pixel (column, row) of each (x, y) point, clamped into the image, as long."""
    x = points[..., 0].round().long().clamp(0, width - 1)
    y = points[..., 1].round().long().clamp(0, height - 1)
    return x, y


def lookup(masks: Tensor, points: Tensor) -> Tensor:
    """(B, N) value of `masks` (B, H, W) at the nearest pixel of each point (B, N, 2)."""
    height, width = masks.shape[-2:]
    x, y = round_to_pixel(points, height, width)
    return masks.flatten(1).gather(1, y * width + x)


def best_pixel(scores: Tensor, tie_cost: Tensor) -> tuple[Tensor, Tensor]:
    """Per image, the pixel of highest `scores` (B, H, W); among equal scores the one of lowest
    `tie_cost` (B, H, W), then the first in raster order. Returns (B, 2) points and (B,) values.
    """
    flat = scores.flatten(1)
    best = flat.amax(1, keepdim=True)
    cost = tie_cost.flatten(1).masked_fill(flat != best, torch.inf)
    return flat_to_xy(cost.argmin(1), scores.shape[-1]), best[:, 0]


def nms_peaks(
    scores: Tensor, k: int, min_distance: float = 0.0, tie_cost: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Greedy non-maximum suppression: up to k pixels of highest score, each pair at least
    `min_distance` px apart (0 = the plain top k). Pixels scored -inf are never picked.

    Ties go to the lowest `tie_cost` (default: distance to the image centre, so a flat map
    yields its centre). Returns points (B, k, 2) and valid (B, k): False where no pixel was left.
    """
    batch, height, width = scores.shape
    if tie_cost is None:
        centre = image_centre(batch, height, width, scores.device)
        tie_cost = distance_to(centre, height, width)
    remaining = scores.clone()
    points = [scores.new_zeros(batch, 0, 2)]
    valid = [torch.zeros(batch, 0, dtype=torch.bool, device=scores.device)]
    for _ in range(k):
        point, value = best_pixel(remaining, tie_cost)
        points.append(point[:, None])
        valid.append((value > -torch.inf)[:, None])
        near = distance_to(point, height, width) < max(min_distance, 1.0)
        remaining = remaining.masked_fill(near, -torch.inf)
    return torch.cat(points, 1), torch.cat(valid, 1)


def weighted_centroid(weights: Tensor) -> Tensor:
    """(B, 2) centre of mass of non-negative weights (B, H, W); the image centre where all are 0.

    Clamped into the image: the mass of an edge column or row can round a hair past it, which
    `Prompts.validate` would refuse."""
    batch, height, width = weights.shape
    xs, ys = pixel_grid(height, width, weights.device)
    total = weights.sum((1, 2))
    safe = total.clamp_min(torch.finfo(weights.dtype).tiny)
    centroid = torch.stack([(weights * xs).sum((1, 2)), (weights * ys).sum((1, 2))], -1)
    limit = centroid.new_tensor([width - 1, height - 1])
    centroid = (centroid / safe[:, None]).clamp(min=0).minimum(limit)
    centre = image_centre(batch, height, width, weights.device)
    return torch.where((total > 0)[:, None], centroid, centre)


def snap_to_mask(points: Tensor, masks: Tensor) -> Tensor:
    """Each (x, y) point (B, 2) if its nearest pixel lies in its mask (B, H, W), else the
    nearest mask pixel (ties: first in raster order). Points of empty masks are kept."""
    height, width = masks.shape[-2:]
    inside = lookup(masks, points[:, None])[:, 0]
    distance = distance_to(points, height, width).masked_fill(~masks, torch.inf)
    nearest = flat_to_xy(distance.flatten(1).argmin(1), width)
    keep = inside | ~masks.flatten(1).any(1)
    return torch.where(keep[:, None], points, nearest)


def relative_region(heatmaps: Tensor, threshold: float) -> Tensor:
    """(B, H, W) bool: pixels at or above `threshold` times their image's maximum."""
    return heatmaps >= threshold * heatmaps.flatten(1).amax(1)[:, None, None]


def connected_components(masks: Tensor, connectivity: int = 8) -> Tensor:
    """Label the 4- or 8-connected components of masks (B, H, W) bool.

    Each component gets the raster index of its first pixel (unique within the image);
    background is -1. Min-label propagation with pointer jumping, all in torch on the device.
    """
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity}")
    batch, height, width = masks.shape
    n = height * width
    index = torch.arange(n, device=masks.device).view(1, height, width)
    labels = torch.where(masks, index, n)
    offsets = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]
    if connectivity == 4:
        offsets = [(dy, dx) for dy, dx in offsets if dy == 0 or dx == 0]
    while True:
        padded = F.pad(labels, (1, 1, 1, 1), value=n)
        merged = labels
        for dy, dx in offsets:
            merged = torch.minimum(
                merged, padded[:, 1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width]
            )
        merged = torch.where(masks, merged, n).flatten(1)
        # Pointer jumping: a label is a pixel of the same component whose own label is no larger.
        jumped = merged.gather(1, merged.clamp(max=n - 1))
        updated = torch.where(merged < n, jumped, n).view(batch, height, width)
        if torch.equal(updated, labels):
            return torch.where(masks, labels, -1)
        labels = updated


def component_masses(labels: Tensor, weights: Tensor) -> Tensor:
    """(B, H*W) summed `weights` per component label of `connected_components` (0 elsewhere)."""
    batch = labels.shape[0]
    flat = labels.flatten(1)
    n = flat.shape[1]
    sums = weights.new_zeros(batch, n + 1)
    sums.scatter_add_(1, flat.where(flat >= 0, n), weights.flatten(1).to(sums.dtype))
    return sums[:, :n]


def split_at_peaks(
    labels: Tensor, heatmaps: Tensor, separation: float, min_value: Tensor
) -> Tensor:
    """`connected_components` labels (B, H, W) with each component split among its peaks.

    A peak is a pixel of a component whose heat is at least `min_value` (B,) and the highest
    within `separation` px (a square window; on a plateau, the first such pixel in raster
    order). Each pixel of a component with several peaks takes the label of its nearest one
    (ties: the first peak in raster order), the peak's raster index; other components keep
    their labels. Two blobs of one class's heat that touch are two objects when each has its
    own peak, while one object's heat stays whole: its peaks lie within `separation`.
    """
    batch, height, width = labels.shape
    radius = max(1, int(separation))
    window = 2 * radius + 1
    inside = labels >= 0
    heat = heatmaps.float().masked_fill(~inside, -torch.inf)
    highest = F.max_pool2d(heat[:, None], window, 1, radius)[:, 0]
    peaks = inside & (heat >= highest) & (heat >= min_value[:, None, None])
    index = torch.arange(height * width, device=labels.device).view(1, height, width)
    # a plateau's first pixel: the largest negated raster index among equal-heat peaks nearby
    first = torch.where(peaks, -index, -height * width).float()
    peaks &= F.max_pool2d(first[:, None], window, 1, radius)[:, 0] <= first
    xs, ys = pixel_grid(height, width, labels.device)
    split = labels.clone()
    for b in peaks.flatten(1).any(1).nonzero()[:, 0].tolist():
        row, column = peaks[b].nonzero(as_tuple=True)  # raster order: a tie goes to the first
        owner = labels[b, row, column]
        distance = (xs - column[:, None, None]) ** 2 + (ys - row[:, None, None]) ** 2
        distance = distance.masked_fill(labels[b] != owner[:, None, None], torch.inf)
        nearest, which = distance.min(0)
        split[b] = torch.where(nearest.isfinite(), (row * width + column)[which], labels[b])
    return split


def ranked_components(labels: Tensor, weights: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """The k components of largest summed `weights` (ties: first in raster order).

    Returns their masks (B, k, H, W) bool and valid (B, k): False where an image has fewer.
    """
    masses = component_masses(labels, weights.float())
    exists = component_masses(labels, torch.ones_like(weights, dtype=torch.float32)) > 0
    order = (
        masses.masked_fill(~exists, -torch.inf).sort(dim=1, descending=True, stable=True).indices
    )
    chosen = order[:, :k]
    valid = exists.gather(1, chosen)
    masks = labels[:, None] == chosen[:, :, None, None]
    return masks & valid[:, :, None, None], valid


def mask_boxes(masks: Tensor) -> Tensor:
    """(B, 4) tight x0, y0, x1, y1 box of each mask (B, H, W); the whole image if empty."""
    batch, height, width = masks.shape
    xs, ys = pixel_grid(height, width, masks.device)
    xs, ys = xs.expand_as(masks), ys.expand_as(masks)
    box = torch.stack(
        [
            xs.masked_fill(~masks, torch.inf).flatten(1).amin(1),
            ys.masked_fill(~masks, torch.inf).flatten(1).amin(1),
            xs.masked_fill(~masks, -torch.inf).flatten(1).amax(1),
            ys.masked_fill(~masks, -torch.inf).flatten(1).amax(1),
        ],
        -1,
    )
    whole = box.new_tensor([0, 0, width - 1, height - 1]).expand(batch, 4)
    return torch.where(masks.flatten(1).any(1)[:, None], box, whole)
