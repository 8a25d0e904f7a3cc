"""Which of SAM's candidate masks to keep: one rule for every SAM (`mask_choice`).

Given one ambiguous prompt, SAM returns three candidate masks (part, object, whole) with a
predicted IoU each, and peers keep different ones. The rules here see every candidate's logits
at the image's size:

- ``iou``: the highest predicted IoU (segment_anything's own advice);
- ``largest``: the largest mask;
- ``stability``: the mask least changed when the logit threshold moves by
  `STABILITY_OFFSET` either way (the stability score of SAM's automatic mask generator);
- ``cam``: the mask that agrees best with the class's heatmap (soft IoU with the heatmap
  scaled to a peak of 1); where the caller has no heatmap (a click, an oracle), ``iou``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from lit_gradcam.errors import ConfigError

MASK_CHOICES = ("iou", "largest", "stability", "cam")
#: Chosen on the quick start's validation split with `configs/sweep_mask_choice.yaml`.
DEFAULT_MASK_CHOICE = "stability"
#: Logit margin of the stability score, as segment_anything's `SamAutomaticMaskGenerator`.
STABILITY_OFFSET = 1.0


def check_mask_choice(choice: str) -> str:
    """`choice` if it names a rule, else a `ConfigError` listing them."""
    if choice not in MASK_CHOICES:
        raise ConfigError(f"mask_choice must be one of {MASK_CHOICES}, got {choice!r}")
    return choice


def best_of(low_res: Tensor, iou: Tensor) -> tuple[Tensor, Tensor]:
    """Per image, the candidate (B, h, w) of highest predicted IoU and that IoU (B,)."""
    best = iou.argmax(1)
    rows = torch.arange(iou.shape[0], device=iou.device)
    return low_res[rows, best], iou[rows, best]


def keep_mask(
    low_res: Tensor,
    scores: Tensor,
    choice: str,
    threshold: float,
    upscale: Callable[[Tensor], Tensor],
    heatmaps: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """The kept candidate's logits (B, H, W) at the image's size and its score (B,).

    low_res: (B, C, h, w) decoder logits and scores (B, C); upscale maps (B, C, h, w) logits to
    the image's size, as the model's post-processing does. With ``iou``, or a single candidate,
    only the kept one is upscaled, as the official predictors' callers do.
    """
    if choice == "iou" or low_res.shape[1] == 1:
        low_res, scores = best_of(low_res, scores)
        return upscale(low_res[:, None])[:, 0], scores
    masks = upscale(low_res)
    kept = choose_masks(masks, scores, choice, threshold, heatmaps)
    rows = torch.arange(len(kept), device=kept.device)
    return masks[rows, kept], scores[rows, kept]


def choose_masks(
    logits: Tensor,
    scores: Tensor,
    choice: str,
    threshold: float,
    heatmaps: Tensor | None = None,
) -> Tensor:
    """Index (B,) of the kept candidate per image.

    logits: (B, C, H, W) mask logits at the image's size; scores: (B, C) predicted IoU;
    threshold: the logit above which a pixel is in the mask; heatmaps: (B, H, W) or None.
    """
    if choice == "iou" or (choice == "cam" and heatmaps is None):
        return scores.argmax(1)
    masks = logits > threshold
    if choice == "largest":
        return masks.flatten(2).sum(2).argmax(1)
    if choice == "stability":
        return stability_scores(logits, threshold).argmax(1)
    if choice == "cam":
        return heatmap_agreement(masks, heatmaps.to(logits.device)).argmax(1)
    raise ConfigError(f"mask_choice must be one of {MASK_CHOICES}, got {choice!r}")


def stability_scores(logits: Tensor, threshold: float) -> Tensor:
    """(B, C): pixels above `threshold + offset` over pixels above `threshold - offset`; a
    candidate empty at both is scored 0."""
    inner = (logits > threshold + STABILITY_OFFSET).flatten(2).sum(2)
    outer = (logits > threshold - STABILITY_OFFSET).flatten(2).sum(2)
    return inner.float() / outer.clamp_min(1).float()


def heatmap_agreement(masks: Tensor, heatmaps: Tensor) -> Tensor:
    """(B, C) soft IoU of each candidate mask (B, C, H, W) with its image's heatmap (B, H, W),
    the heatmap scaled to a peak of 1 (an all-zero heatmap agrees with nothing)."""
    heat = heatmaps.flatten(1).float()
    heat = heat / heat.amax(1, keepdim=True).clamp_min(torch.finfo(heat.dtype).tiny)
    heat = heat[:, None]
    mask = masks.flatten(2).float()
    union = (mask + heat - mask * heat).sum(2)
    return (mask * heat).sum(2) / union.clamp_min(torch.finfo(heat.dtype).tiny)
