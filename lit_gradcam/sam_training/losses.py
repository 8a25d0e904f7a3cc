"""SAM's training loss: focal + dice on the mask, MSE on the predicted IoU, best of the candidates.

With several candidate masks (an ambiguous single point), only the candidate of lowest mask loss
is trained on the mask, as in SAM; the IoU head learns every candidate's actual IoU. The focal term
can weigh the pixels along the ground truth's border more (`border_weight`): on small shapes
nearly every wrong pixel lies there, and each one costs IoU.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.ops import sigmoid_focal_loss


@dataclass
class LossTerms:
    """Per-image terms (B,) and the chosen candidate's logits (B, H, W) and IoU with the truth."""

    total: Tensor
    focal: Tensor
    dice: Tensor
    iou_mse: Tensor
    logits: Tensor
    iou: Tensor


def mask_iou(predicted: Tensor, target: Tensor) -> Tensor:
    """IoU (...) of bool masks (..., H, W); 1 where both are empty."""
    intersection = (predicted & target).flatten(-2).sum(-1).float()
    union = (predicted | target).flatten(-2).sum(-1).float()
    return torch.where(union > 0, intersection / union.clamp_min(1), torch.ones_like(union))


def border_band(masks: Tensor) -> Tensor:
    """Pixels (B, H, W) bool of `masks` (B, H, W) whose 3 x 3 neighbourhood holds both classes:
    the one-pixel rings on either side of the border. The image's edge is no border."""
    masks = masks[:, None].float()
    dilated = F.max_pool2d(masks, 3, stride=1, padding=1)  # padding counts as -inf
    eroded = -F.max_pool2d(-masks, 3, stride=1, padding=1)
    return (dilated > eroded)[:, 0]


def dice_loss(logits: Tensor, target: Tensor, smooth: float = 1.0) -> Tensor:
    """1 - soft Dice (...) of sigmoid(logits) against float targets, over the last two dims."""
    probs = logits.sigmoid().flatten(-2)
    target = target.flatten(-2)
    overlap = (probs * target).sum(-1)
    return 1 - (2 * overlap + smooth) / (probs.sum(-1) + target.sum(-1) + smooth)


def sam_loss(
    logits: Tensor,
    iou_pred: Tensor,
    masks: Tensor,
    focal_weight: float,
    dice_weight: float,
    iou_weight: float,
    focal_alpha: float | None = 0.25,
    border_weight: float = 0.0,
) -> LossTerms:
    """Loss of candidate logits (B, C, H, W) and predicted IoU (B, C) for `masks` (B, H, W).

    focal_alpha: the focal loss's weight of foreground pixels (background: 1 - alpha), SAM 2's
    0.25; None weighs both alike.
    border_weight: extra focal weight of the pixels in `border_band`: they count
    1 + border_weight times (0: every pixel alike, as in SAM).
    """
    target = masks[:, None].expand_as(logits).float()
    alpha = -1.0 if focal_alpha is None else focal_alpha  # torchvision's "no weighting"
    focal = sigmoid_focal_loss(logits, target, alpha=alpha, reduction="none")
    if border_weight:
        focal = focal * (1 + border_weight * border_band(masks)[:, None])
    focal = focal.flatten(2).mean(-1)
    dice = dice_loss(logits, target)
    best = (focal_weight * focal + dice_weight * dice).argmin(1)
    rows = torch.arange(logits.shape[0], device=logits.device)
    actual = mask_iou(logits.detach() > 0, masks[:, None])
    iou_mse = (iou_pred - actual).square().mean(1)
    total = focal_weight * focal[rows, best] + dice_weight * dice[rows, best] + iou_weight * iou_mse
    return LossTerms(
        total, focal[rows, best], dice[rows, best], iou_mse, logits[rows, best], actual[rows, best]
    )
