"""SAM's loss: the best candidate is the one trained, the IoU head learns the actual IoU."""

from __future__ import annotations

import pytest
import torch

from lit_gradcam.sam_training.losses import border_band, dice_loss, mask_iou, sam_loss


def test_mask_iou() -> None:
    a = torch.zeros(3, 4, 4, dtype=torch.bool)
    b = torch.zeros(3, 4, 4, dtype=torch.bool)
    a[0, :2] = True
    b[0, :1] = True  # half
    a[1, 0, 0] = True  # disjoint from an empty mask
    assert mask_iou(a, b).tolist() == [0.5, 0.0, 1.0]  # two empty masks agree


def test_dice_loss_is_zero_for_a_confident_match_and_one_for_the_opposite() -> None:
    target = torch.zeros(1, 8, 8)
    target[0, 2:6, 2:6] = 1
    assert dice_loss(100 * (2 * target - 1), target).item() == pytest.approx(0, abs=1e-3)
    assert dice_loss(-100 * (2 * target - 1), target).item() == pytest.approx(1, abs=0.1)


def test_sam_loss_trains_the_best_candidate_and_supervises_every_iou() -> None:
    masks = torch.zeros(2, 8, 8, dtype=torch.bool)
    masks[:, 2:6, 2:6] = True
    right = 20.0 * (2 * masks.float() - 1)
    wrong = -right
    logits = torch.stack([torch.stack([wrong[0], right[0], wrong[0]]), torch.stack([wrong[1]] * 3)])
    logits.requires_grad_(True)
    iou_pred = torch.tensor([[0.0, 1.0, 0.0], [0.5, 0.5, 0.5]], requires_grad=True)
    terms = sam_loss(logits, iou_pred, masks, 20.0, 1.0, 1.0)
    assert torch.equal(terms.logits[0], logits[0, 1])  # the right candidate was chosen
    assert terms.iou.tolist() == [1.0, 0.0]
    assert terms.iou_mse.tolist() == pytest.approx([0.0, 0.25])
    assert terms.total[0].item() == pytest.approx(0, abs=1e-3)
    terms.total.sum().backward()
    assert logits.grad[0, [0, 2]].abs().sum() == 0  # the losing candidates get no mask loss
    assert iou_pred.grad[1].abs().min() > 0  # every IoU output is supervised


@pytest.mark.parametrize("focal_alpha", [0.25, None])
def test_focal_alpha_weighs_foreground_and_background_pixels(focal_alpha: float | None) -> None:
    masks = torch.zeros(1, 4, 4, dtype=torch.bool)
    masks[0, :2] = True
    logits = torch.zeros(1, 1, 4, 4)  # p = 0.5 everywhere: every pixel's focal term is equal
    terms = sam_loss(logits, torch.zeros(1, 1), masks, 1.0, 0.0, 0.0, focal_alpha)
    # per pixel: weight * (1 - 0.5)^2 * log(2), half the pixels foreground
    unweighted = 0.25 * torch.log(torch.tensor(2.0)).item()
    weight = 1.0 if focal_alpha is None else (focal_alpha + (1 - focal_alpha)) / 2
    assert terms.focal.item() == pytest.approx(unweighted * weight)
    skewed = torch.zeros(1, 4, 4, dtype=torch.bool)
    skewed[0, :1] = True  # a quarter foreground: alpha 0.25 weighs it less than background
    skew = sam_loss(logits, torch.zeros(1, 1), skewed, 1.0, 0.0, 0.0, focal_alpha).focal.item()
    expected = 1.0 if focal_alpha is None else 0.25 * focal_alpha + 0.75 * (1 - focal_alpha)
    assert skew == pytest.approx(unweighted * expected)


def test_border_band_is_the_ring_on_either_side_of_the_border_but_not_the_image_edge() -> None:
    masks = torch.zeros(1, 7, 7, dtype=torch.bool)
    masks[0, 2:5, 2:5] = True  # a 3 x 3 square: its centre is the only interior pixel
    band = border_band(masks)[0]
    inside = masks[0] & band
    assert inside.sum() == 8 and not band[3, 3]
    outside = ~masks[0] & band  # the 5 x 5 ring around the square
    assert outside.sum() == 16 and outside[1, 1:6].all() and not band[0].any()
    edge = torch.zeros(1, 4, 4, dtype=torch.bool)
    edge[0, :, :2] = True  # touches three image edges: only column 1 / 2 is border
    assert border_band(edge)[0].nonzero()[:, 1].unique().tolist() == [1, 2]


def test_border_weight_scales_only_the_errors_on_the_border() -> None:
    masks = torch.zeros(1, 8, 8, dtype=torch.bool)
    masks[0, 2:6, 2:6] = True
    right = 20.0 * (2 * masks.float() - 1)
    band = border_band(masks)
    for where, factor in ((band[0], 5.0), (~band[0], 1.0)):
        logits = right.clone()
        logits[0][where] = 0.0  # unsure (p = 0.5) on these pixels only
        terms = [
            sam_loss(logits[:, None], torch.zeros(1, 1), masks, 1.0, 0.0, 0.0, None, weight)
            for weight in (0.0, 4.0)
        ]
        assert terms[1].focal.item() == pytest.approx(factor * terms[0].focal.item(), rel=1e-4)
