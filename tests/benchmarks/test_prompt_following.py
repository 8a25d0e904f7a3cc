"""The prompt-following benchmark's probes and scores, checked on scenes with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers.benchmark_scripts import load_benchmark
from scipy import ndimage

from lit_gradcam.prompt_types import Prompts
from lit_gradcam.prompts.geometry import lookup
from lit_gradcam.segmenters.base import Segmenter


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("prompt_following")


class RegionUnderThePoint(Segmenter):
    """Cuts the connected region of equal colour under the point: follows every prompt."""

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        return images

    def predict(
        self, state: torch.Tensor, prompts: Prompts, heatmaps: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        masks = []
        for image, (x, y) in zip(state, prompts.points[:, 0].long().tolist(), strict=True):
            same = (image == image[:, y, x, None, None]).all(0).numpy()
            regions, _ = ndimage.label(same)
            masks.append(torch.from_numpy(regions == regions[y, x]))
        return torch.stack(masks), torch.ones(len(masks))


class AlwaysTheFirstShape(RegionUnderThePoint):
    """Returns the first shape whatever the prompt."""

    def __init__(self, masks: torch.Tensor) -> None:
        self.masks = masks

    def predict(
        self, state: torch.Tensor, prompts: Prompts, heatmaps: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.masks[:, 0], torch.ones(len(self.masks))


def test_probes_sit_deepest_inside_each_shape_and_the_background(bench) -> None:
    masks = torch.zeros(1, 2, 48, 64, dtype=torch.bool)
    masks[0, 0, 10:21, 4:15] = True  # centre (9, 15)
    masks[0, 1, 30:45, 43:58] = True  # centre (50, 37)
    points = bench.probe_points(masks)
    assert points[0, 0].tolist() == [9, 15] and points[0, 1].tolist() == [50, 37]
    background = points[0, 2]
    assert not lookup(masks[0].any(0)[None], background[None, None]).any()
    depth = ndimage.distance_transform_edt(np.pad(~masks[0].any(0).numpy(), 1))[1:-1, 1:-1]
    assert depth[int(background[1]), int(background[0])] == pytest.approx(depth.max())


def test_a_near_miss_point_sits_just_off_its_shape_and_away_from_the_other(bench) -> None:
    masks = torch.zeros(1, 2, 48, 64, dtype=torch.bool)
    masks[0, 0, 10:21, 4:15] = True
    masks[0, 1, 30:45, 43:58] = True
    near = bench.near_miss_points(masks)
    for k in range(2):
        x, y = near[0, k].long().tolist()
        assert not masks[0, :, y, x].any()
        to_shape = ndimage.distance_transform_edt(~masks[0, k].numpy())[y, x]
        assert to_shape == pytest.approx(bench.NEAR_MISS, abs=0.5)
    # shape 0 is top left, shape 1 bottom right: each point is on the far side from the other
    assert near[0, 0, 1] < 15 and near[0, 1, 1] > 37


def test_scores_tell_a_segmenter_that_follows_the_point_from_one_that_does_not(bench) -> None:
    images, masks = bench.two_object_scenes(6, seed=0)
    flat = torch.zeros_like(images)
    flat[:] = 100
    for k, value in enumerate((200, 30)):
        flat.permute(1, 0, 2, 3)[:, masks[:, k]] = value  # flat colours: regions are the truth
    points, near = bench.probe_points(masks), bench.near_miss_points(masks)
    follows = bench.score(RegionUnderThePoint(), flat, masks, points, near)
    assert follows["iou_pointed"] == 1 and follows["other_object"] == 0
    assert follows["background_object_iou"] == 0 and follows["near_miss_shape"] == 0
    stuck = bench.score(AlwaysTheFirstShape(masks), flat, masks, points, near)
    assert stuck["iou_pointed"] == pytest.approx(0.5) and stuck["other_object"] == 0.5
    assert stuck["background_object_iou"] == 1 and stuck["near_miss_shape"] == 0.5
