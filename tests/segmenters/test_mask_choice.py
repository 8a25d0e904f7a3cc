"""`mask_choice`: SamSegmenter keeps the candidate each rule names among `SamPredictor`'s three,
the rule computed here in numpy and with segment_anything's own stability score."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from segment_anything import SamPredictor
from segment_anything.modeling import Sam
from segment_anything.utils.amg import calculate_stability_score

from lit_gradcam.errors import ConfigError
from lit_gradcam.prompt_types import Prompts
from lit_gradcam.segmenters.mask_choice import MASK_CHOICES, STABILITY_OFFSET, choose_masks
from lit_gradcam.segmenters.sam import SamSegmenter


def _images(batch: int, height: int, width: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    small = torch.rand(batch, 3, height // 6, width // 6, generator=generator)
    big = torch.nn.functional.interpolate(small, (height, width), mode="bilinear")
    return (big * 255).round().to(torch.uint8)


def _heatmaps(batch: int, height: int, width: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch, height, width, generator=generator) ** 3


def _numpy_rule(choice: str, logits: np.ndarray, iou: np.ndarray, heat: np.ndarray) -> int:
    """The candidate a rule keeps, from the predictor's three logits (3, H, W) in numpy."""
    masks = logits > 0.0
    if choice == "iou":
        return int(iou.argmax())
    if choice == "largest":
        return int(masks.reshape(3, -1).sum(1).argmax())
    if choice == "stability":
        scores = calculate_stability_score(torch.from_numpy(logits), 0.0, STABILITY_OFFSET)
        return int(scores.argmax())
    heat = heat / heat.max()
    agreement = [
        np.minimum(m, heat).sum() / np.maximum(m, heat).sum() for m in masks.astype(np.float64)
    ]
    return int(np.argmax(agreement))


@pytest.mark.parametrize("choice", MASK_CHOICES)
def test_keeps_the_candidate_the_rule_names(tiny_sam: Sam, choice: str) -> None:
    images, heat = _images(4, 40, 56, seed=1), _heatmaps(4, 40, 56, seed=2)
    points = torch.tensor([[[5.0, 6.0]], [[30.0, 20.0]], [[50.0, 35.0]], [[12.0, 33.0]]])
    prompts = Prompts(points, torch.tensor([[1], [1], [0], [1]]))
    segmenter = SamSegmenter.from_model(tiny_sam, mask_choice=choice)
    logits, scores = segmenter.predict_logits(segmenter.embed(images), prompts, heat)
    predictor = SamPredictor(tiny_sam)
    chosen_differently = 0
    for index in range(len(images)):
        predictor.set_image(images[index].permute(1, 2, 0).numpy())
        candidates, iou, _ = predictor.predict(
            points[index].numpy(), prompts.labels[index].numpy(), return_logits=True
        )
        kept = _numpy_rule(choice, candidates, iou, heat[index].numpy())
        chosen_differently += kept != int(iou.argmax())
        assert torch.equal(logits[index] > 0, torch.from_numpy(candidates[kept] > 0))
        np.testing.assert_allclose(logits[index].numpy(), candidates[kept], atol=1e-4)
        assert scores[index].item() == pytest.approx(float(iou[kept]), abs=1e-5)
    if choice in ("largest", "cam"):  # the rule is not the predicted IoU in disguise here
        assert chosen_differently > 0


def test_cam_without_heatmaps_keeps_the_predicted_iou() -> None:
    logits = torch.randn(3, 3, 8, 8)
    scores = torch.rand(3, 3)
    assert torch.equal(choose_masks(logits, scores, "cam", 0.0), scores.argmax(1))


def test_unknown_choice_is_refused() -> None:
    with pytest.raises(ConfigError, match="mask_choice must be one of"):
        SamSegmenter(mask_choice="biggest")
