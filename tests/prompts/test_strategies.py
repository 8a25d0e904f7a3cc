"""Every prompt strategy on synthetic heatmaps whose right answer is known by construction."""

from __future__ import annotations

import pytest
import torch
from helpers.heatmaps import H, W, as_heatmaps, blob, check, disc
from torch import Tensor

from lit_gradcam.prompt_types import BACKGROUND, FOREGROUND, PAD_LABEL, Prompts
from lit_gradcam.prompts.base import PromptStrategy
from lit_gradcam.prompts.strategies import (
    CamBox,
    CamConsensus,
    CenterPoint,
    ForegroundBackground,
    GroundTruthBox,
    GroundTruthCentroid,
    PeakAndValley,
    TopKForeground,
    WeightedCentroid,
)


def heat_strategies() -> list[PromptStrategy]:
    return [
        TopKForeground(smoothing_radius=0),
        TopKForeground(k=3),
        ForegroundBackground(num_foreground=2, num_background=3),
        WeightedCentroid(),
        PeakAndValley(num_background=2),
        CamBox(),
        CamBox(rank_by="mass", connectivity=4),
        CamConsensus(),
    ]


def first_foreground(prompts: Prompts) -> Tensor:
    """(B, 2) the first foreground point of each image."""
    index = (prompts.labels == FOREGROUND).long().argmax(1)
    return prompts.points[torch.arange(prompts.batch_size), index]


@pytest.mark.parametrize("strategy", heat_strategies(), ids=lambda s: type(s).__name__)
def test_single_blob_two_blobs_and_border_blob(strategy: PromptStrategy) -> None:
    heavy, light, border = (20.0, 14.0), (36.0, 16.0), (0.0, 16.0)
    heatmaps = as_heatmaps(
        blob(*heavy, 3.0),
        blob(10.0, 16.0, 4.0) + blob(*light, 2.0, 0.7),
        blob(*border, 3.0),
    )
    prompts = strategy.prompts(heatmaps)
    check(prompts, 3)
    expected = torch.tensor([heavy, (10.0, 16.0), border])
    assert (first_foreground(prompts) - expected).norm(dim=-1).max() <= 3.0


@pytest.mark.parametrize(
    "strategy", [CenterPoint(), *heat_strategies()], ids=lambda s: type(s).__name__
)
def test_flat_maps_give_the_centre(strategy: PromptStrategy) -> None:
    heatmaps = torch.stack([torch.zeros(H, W), torch.full((H, W), 0.5)])
    prompts = strategy.prompts(heatmaps)
    check(prompts, 2)
    assert (first_foreground(prompts) - torch.tensor([W / 2, H / 2])).abs().max() <= 1.0


def test_center_point_ignores_heat() -> None:
    prompts = CenterPoint(name="centre").prompts(as_heatmaps(blob(3, 3, 2.0)))
    assert prompts.points.tolist() == [[[24.0, 16.0]]]
    assert prompts.labels.tolist() == [[FOREGROUND]]


def test_top_k_takes_the_hottest_pixels_in_order() -> None:
    heatmaps = torch.zeros(1, H, W)
    heatmaps[0, 5, 7], heatmaps[0, 20, 30], heatmaps[0, 9, 2] = 1.0, 0.8, 0.6
    prompts = TopKForeground(k=3, smoothing_radius=None).prompts(heatmaps)
    assert prompts.points.tolist() == [[[7.0, 5.0], [30.0, 20.0], [2.0, 9.0]]]


def test_weighted_centroid_snaps_into_the_hot_region() -> None:
    heatmaps = as_heatmaps(blob(8.0, 16.0, 2.0) + blob(40.0, 16.0, 2.0))  # centre is cold
    point = WeightedCentroid(threshold=0.6).prompts(heatmaps).points[0, 0]
    assert heatmaps[0, int(point[1]), int(point[0])] >= 0.6


def test_peak_and_valley_backgrounds_are_cold_spread_and_far() -> None:
    heatmaps = as_heatmaps(blob(20.0, 14.0, 3.0))
    prompts = PeakAndValley(num_background=3, background_spacing=10.0).prompts(heatmaps)
    assert prompts.labels.tolist() == [[FOREGROUND, BACKGROUND, BACKGROUND, BACKGROUND]]
    peak, valleys = prompts.points[0, 0], prompts.points[0, 1:]
    assert peak.tolist() == [20.0, 14.0]
    assert torch.pdist(valleys).min() >= 10.0
    assert ((valleys - peak).norm(dim=-1) > 15.0).all()
    assert heatmaps[0, valleys[:, 1].long(), valleys[:, 0].long()].max() < 1e-3


class TestForegroundBackground:
    heatmaps = as_heatmaps(blob(20.0, 14.0, 3.0), blob(30.0, 20.0, 5.0))

    def test_backgrounds_are_cold_and_far_from_the_foreground_centre(self) -> None:
        strategy = ForegroundBackground(num_foreground=3, num_background=5, min_distance=15.0)
        prompts = strategy.prompts(self.heatmaps)
        check(prompts, 2)
        smoothed = strategy.smooth(self.heatmaps)
        for i in range(2):
            fg = prompts.points[i, prompts.labels[i] == FOREGROUND]
            bg = prompts.points[i, prompts.labels[i] == BACKGROUND]
            assert len(fg) == 3 and len(bg) == 5
            assert ((bg - fg.mean(0)).norm(dim=-1) >= 15.0).all()
            assert smoothed[i, bg[:, 1].long(), bg[:, 0].long()].max() <= 0.2

    def test_deterministic_and_independent_of_batch_position(self) -> None:
        strategy = ForegroundBackground(num_background=4, seed=3)
        first = strategy.prompts(self.heatmaps)
        again = ForegroundBackground(num_background=4, seed=3).prompts(self.heatmaps)
        swapped = strategy.prompts(self.heatmaps.flip(0))
        assert torch.equal(first.points, again.points)
        assert torch.equal(first.points, swapped.points.flip(0))
        other_seed = ForegroundBackground(num_background=4, seed=4).prompts(self.heatmaps)
        assert not torch.equal(first.points, other_seed.points)

    def test_zero_background_points(self) -> None:
        prompts = ForegroundBackground(num_background=0).prompts(self.heatmaps)
        assert prompts.labels.tolist() == [[FOREGROUND]] * 2
        assert PeakAndValley(num_background=0).prompts(self.heatmaps).labels.shape == (2, 1)

    def test_no_qualifying_pixel_pads_the_background(self) -> None:
        prompts = ForegroundBackground(num_background=2, min_distance=1e3).prompts(self.heatmaps)
        check(prompts, 2)
        assert prompts.labels.tolist() == [[FOREGROUND, PAD_LABEL, PAD_LABEL]] * 2


class TestGroundTruthCentroid:
    def test_snaps_ring_and_c_shape_centroids_onto_the_mask(self) -> None:
        ring = disc(20.0, 16.0, 8.0) & ~disc(20.0, 16.0, 5.0)
        c_shape = ring & (torch.arange(W) < 24)[None]  # opens to the right
        masks = torch.stack([ring, c_shape, disc(30.0, 10.0, 3.0)])
        prompts = GroundTruthCentroid().prompts(torch.zeros(3, H, W), masks)
        check(prompts, 3)
        points = prompts.points[:, 0]
        assert masks[torch.arange(3), points[:, 1].long(), points[:, 0].long()].all()
        assert (points[0] - torch.tensor([20.0, 16.0])).norm() <= 6.0  # the ring's inner edge
        assert points[2].tolist() == [30.0, 10.0]
        assert GroundTruthCentroid.uses_ground_truth

    def test_empty_mask_gives_the_centre_and_missing_masks_raise(self) -> None:
        strategy = GroundTruthCentroid()
        prompts = strategy.prompts(torch.zeros(1, H, W), torch.zeros(1, H, W, dtype=torch.bool))
        assert prompts.points.tolist() == [[[24.0, 16.0]]]
        with pytest.raises(ValueError, match="gt_masks"):
            strategy.prompts(torch.zeros(1, H, W))


class TestGroundTruthBox:
    def test_the_tight_box_of_each_mask_and_no_point(self) -> None:
        masks = torch.zeros(2, H, W, dtype=torch.bool)
        masks[0, 3:9, 10:21] = True
        masks[0, 20, 40] = True  # a stray pixel widens the box
        heat = torch.rand(2, H, W)  # ignored
        prompts = GroundTruthBox().prompts(heat, masks)
        assert prompts.points.shape == (2, 0, 2) and prompts.labels.shape == (2, 0)
        assert prompts.boxes.tolist() == [[10.0, 3.0, 40.0, 20.0], [0.0, 0.0, W - 1.0, H - 1.0]]
        assert GroundTruthBox.uses_ground_truth
        with pytest.raises(ValueError, match="gt_masks"):
            GroundTruthBox().prompts(heat)


class TestCamBox:
    def test_box_of_the_largest_component_and_its_peak(self) -> None:
        heatmaps = torch.zeros(1, H, W)
        heatmaps[0, 3:10, 5:13] = 0.7  # 56 px, the largest
        heatmaps[0, 20:23, 30:33] = 1.0  # 9 px, the hottest
        heatmaps[0, 6, 9] = 0.9
        prompts = CamBox(threshold=0.5).prompts(heatmaps)
        assert prompts.boxes.tolist() == [[5.0, 3.0, 12.0, 9.0]]
        assert prompts.points.tolist() == [[[9.0, 6.0]]]
        by_mass = CamBox(threshold=0.5, rank_by="mass").prompts(heatmaps)
        assert by_mass.boxes.tolist() == [[5.0, 3.0, 12.0, 9.0]]  # 56 x 0.7 > 9 x 1
        heatmaps[0, 20:23, 30:33] = 10.0
        by_mass = CamBox(threshold=0.05, rank_by="mass").prompts(heatmaps)
        assert by_mass.boxes.tolist() == [[30.0, 20.0, 32.0, 22.0]]

    def test_connectivity_and_margin(self) -> None:
        heatmaps = torch.zeros(1, H, W)
        heatmaps[0, 0:2, 0:2] = 1.0  # 4 px
        heatmaps[0, 2:5, 2:5] = 1.0  # 9 px, touching the first only diagonally
        eight = CamBox(connectivity=8, margin=2.0).prompts(heatmaps)
        four = CamBox(connectivity=4, margin=2.0).prompts(heatmaps)
        assert eight.boxes.tolist() == [[0.0, 0.0, 6.0, 6.0]]
        assert four.boxes.tolist() == [[0.0, 0.0, 6.0, 6.0]]
        four = CamBox(connectivity=4).prompts(heatmaps)
        assert four.boxes.tolist() == [[2.0, 2.0, 4.0, 4.0]]
        eight.validate(H, W)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu() -> None:
    heatmaps = as_heatmaps(blob(20.0, 14.0, 3.0), blob(10.0, 16.0, 4.0) + blob(36.0, 16.0, 2.0))
    for strategy in [CenterPoint(), *heat_strategies()]:
        on_cpu = strategy.prompts(heatmaps)
        on_cuda = strategy.prompts(heatmaps.cuda())
        assert on_cuda.points.is_cuda and on_cuda.labels.is_cuda
        on_cuda.validate(H, W)
        assert torch.equal(on_cuda.labels.cpu(), on_cpu.labels)
        assert torch.allclose(on_cuda.points.cpu(), on_cpu.points, atol=1e-3)
