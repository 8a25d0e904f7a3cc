"""Every prompt strategy on synthetic heatmaps whose right answer is known by construction."""

from __future__ import annotations

from typing import Any

import pytest
import torch
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
from lit_gradcam.segmenters.base import Segmenter

H, W = 32, 48


def blob(cx: float, cy: float, sigma: float, amplitude: float = 1.0) -> Tensor:
    """(H, W) Gaussian bump centred at pixel (cx, cy)."""
    ys, xs = torch.meshgrid(torch.arange(H).float(), torch.arange(W).float(), indexing="ij")
    return amplitude * torch.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma**2))


def as_heatmaps(*maps: Tensor) -> Tensor:
    """Stack maps into (B, H, W), each rescaled to max 1 as a CAM is."""
    stacked = torch.stack(maps)
    return stacked / stacked.flatten(1).amax(1).clamp_min(1e-12)[:, None, None]


def disc(cx: float, cy: float, radius: float) -> Tensor:
    ys, xs = torch.meshgrid(torch.arange(H).float(), torch.arange(W).float(), indexing="ij")
    return (xs - cx) ** 2 + (ys - cy) ** 2 <= radius**2


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


def check(prompts: Prompts, batch: int) -> None:
    prompts.validate(H, W)
    assert prompts.batch_size == batch
    assert torch.isfinite(prompts.points).all()
    assert (prompts.labels == FOREGROUND).any(1).all()
    if prompts.boxes is not None:
        assert torch.isfinite(prompts.boxes).all()


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


class FakeSegmenter(Segmenter):
    """Returns the `good` mask for points inside `zone`, the `decoy` mask elsewhere; counts calls.

    decoy_first: instead, the first `predict` call returns the decoy for every point.
    """

    name = "fake"

    def __init__(self, zone: Tensor, good: Tensor, decoy: Tensor, decoy_first: bool = False):
        self.zone, self.good, self.decoy = zone, good, decoy
        self.decoy_first = decoy_first
        self.embed_calls = 0
        self.calls: list[Prompts] = []

    def embed(self, images: Tensor) -> Any:
        self.embed_calls += 1
        return None

    def predict(self, state: Any, prompts: Prompts) -> tuple[Tensor, Tensor]:
        prompts.validate(H, W)
        self.calls.append(prompts)
        x, y = prompts.points[:, 0].round().long().unbind(-1)
        hit = self.zone[torch.arange(len(x)), y, x]
        if self.decoy_first and len(self.calls) == 1:
            hit = torch.zeros_like(hit)
        masks = torch.where(hit[:, None, None], self.good, self.decoy)
        return masks, torch.where(hit, 0.3, 0.9)


class TestCamConsensus:
    centre = (14.0, 16.0)
    heatmaps = as_heatmaps(blob(*centre, 3.0), blob(*centre, 3.0))

    def segmenter(self, decoy_first: bool = False) -> FakeSegmenter:
        good = disc(*self.centre, 4.0)
        decoy = good | (torch.arange(W) < 40)[None].expand(H, W)  # all the heat, and much more
        zone = disc(*self.centre, 2.0)
        return FakeSegmenter(*(t.expand(2, H, W) for t in (zone, good, decoy)), decoy_first)

    def test_picks_the_heat_backed_mask_over_a_bigger_heat_poor_decoy(self) -> None:
        segmenter = self.segmenter()
        strategy = CamConsensus(refine=False, num_peaks=3, num_components=1)
        prompts, masks, scores = strategy.segment(self.heatmaps, segmenter, state=None)
        check(prompts, 2)
        assert torch.equal(masks, segmenter.good)
        assert scores.tolist() == pytest.approx([0.3, 0.3])
        assert segmenter.embed_calls == 0
        assert len(segmenter.calls) >= 2
        assert any(not segmenter.zone[0, int(p[1]), int(p[0])] for p in _points(segmenter))

    def test_a_later_candidate_can_win(self) -> None:
        strategy = CamConsensus(refine=False)
        segmenter = self.segmenter(decoy_first=True)
        prompts, masks, _ = strategy.segment(self.heatmaps, segmenter, state=None)
        assert torch.equal(masks, segmenter.good)
        assert torch.equal(prompts.points[:, 0], strategy.candidates(self.heatmaps)[0][:, 1])

    def test_agreement_prefers_the_tight_mask(self) -> None:
        segmenter = self.segmenter()
        strategy = CamConsensus(segmenter_score_weight=0.0)
        no_score = torch.zeros(2)
        good = strategy.agreement(segmenter.good, self.heatmaps, no_score)
        decoy = strategy.agreement(segmenter.decoy, self.heatmaps, no_score)
        assert (good > decoy).all()
        empty = strategy.agreement(torch.zeros(2, H, W, dtype=torch.bool), self.heatmaps, no_score)
        assert empty.tolist() == [0.0, 0.0]

    def test_images_with_fewer_candidates_repeat_their_first(self) -> None:
        heatmaps = as_heatmaps(blob(10.0, 16.0, 2.0) + blob(36.0, 16.0, 2.0), blob(20.0, 16.0, 2.0))
        strategy = CamConsensus(num_peaks=1, num_components=2)
        points, valid = strategy.candidates(heatmaps)
        assert valid.tolist() == [[True, True, True, True], [True, True, True, False]]
        assert torch.equal(points[1, 3], points[1, 0])

    def test_the_weighted_centroid_alone(self) -> None:
        segmenter = self.segmenter()
        strategy = CamConsensus(num_peaks=0, num_components=0, refine=False)
        prompts, masks, _ = strategy.segment(self.heatmaps, segmenter, None)
        assert len(segmenter.calls) == 1
        assert torch.equal(prompts.points, strategy.prompts(self.heatmaps).points)

    @pytest.mark.parametrize("refine_box", [False, True])
    def test_refine_feeds_the_winning_mask_back(self, refine_box: bool) -> None:
        shifted = as_heatmaps(blob(17.0, 16.0, 3.0), blob(17.0, 16.0, 3.0))  # CAM beside object
        good = disc(*self.centre, 4.0).expand(2, H, W)
        plain, refined = (FakeSegmenter(good, good, ~good) for _ in range(2))
        first, _, _ = CamConsensus(refine=False).segment(shifted, plain, state=None)
        strategy = CamConsensus(refine=True, refine_box=refine_box)
        prompts, masks, _ = strategy.segment(shifted, refined, None)
        check(prompts, 2)
        assert first.points.flatten().tolist() == pytest.approx([17.0, 16.0] * 2)
        assert prompts.points.flatten().tolist() == pytest.approx([*self.centre] * 2)
        assert len(refined.calls) == len(plain.calls) + 1
        if refine_box:
            assert prompts.boxes.tolist() == [[10.0, 12.0, 18.0, 20.0]] * 2
            assert refined.calls[-1].boxes is not None
        else:
            assert prompts.boxes is None and refined.calls[-1].boxes is None
        assert torch.equal(masks, good)

    def test_prompts_alone_give_the_weighted_centroid(self) -> None:
        prompts = CamConsensus().prompts(self.heatmaps)
        assert prompts.points.flatten().tolist() == pytest.approx([*self.centre] * 2)


def box(top: int, bottom: int, left: int, right: int) -> Tensor:
    """(H, W) bool: rows top..bottom, columns left..right, inclusive."""
    mask = torch.zeros(H, W, dtype=torch.bool)
    mask[top : bottom + 1, left : right + 1] = True
    return mask


class ZoneSegmenter(Segmenter):
    """Known masks per prompt point: a point in zone i gets mask i and score i, a point in no
    zone an empty mask scored 0. Records the points of every call; never embeds."""

    name = "zones"

    def __init__(self, zones: list[tuple[Tensor, Tensor, float]]) -> None:
        self.zones = zones
        self.calls: list[Tensor] = []

    def embed(self, images: Tensor) -> Any:
        raise AssertionError("a strategy must not re-embed")

    def predict(self, state: Any, prompts: Prompts) -> tuple[Tensor, Tensor]:
        self.calls.append(prompts.points[:, 0].clone())
        masks, scores = [], []
        for x, y in prompts.points[:, 0].round().long().tolist():
            mask, score = next(
                ((m, s) for zone, m, s in self.zones if zone[y, x]),
                (torch.zeros(H, W, dtype=torch.bool), 0.0),
            )
            masks.append(mask)
            scores.append(score)
        return torch.stack(masks), torch.tensor(scores)


class TestCamConsensusVote:
    """Flat heat on a big square S1 and a small square S2 nearer the image centre.

    The first candidate (the weighted centroid) falls in S1, the second (the peak: every hot
    pixel ties, so the one nearest the image centre) in S2. From S1 the segmenter cuts S1 plus
    a cold band, confidently; from S2 exactly S2, with a low score. The heat backs the tight
    mask, the segmenter's confidence the leaky one.
    """

    s1, s2 = box(4, 11, 4, 11), box(20, 23, 22, 25)  # 64 px and 16 px
    heatmaps = (s1 | s2).float()[None]
    leaky = box(4, 11, 4, 47)  # S1 and a cold band: 352 px
    leaky_iou, tight_iou = 64 / (352 + 80 - 64), 16 / 80  # soft IoU with the hot S1 + S2

    def segmenter(self) -> ZoneSegmenter:
        return ZoneSegmenter([(self.s1, self.leaky, 0.9), (self.s2, self.s2, 0.3)])

    def test_candidates_are_the_centroid_in_s1_and_the_peak_in_s2(self) -> None:
        points, valid = CamConsensus().candidates(self.heatmaps)
        assert points.flatten().tolist() == pytest.approx([10.7, 10.3, 24.0, 20.0])
        assert valid.tolist() == [[True, True]]

    def test_heat_agreement_alone_elects_the_later_tight_candidate(self) -> None:
        strategy = CamConsensus(segmenter_score_weight=0.0, refine=False)
        no_score = torch.zeros(1)
        leaky = strategy.agreement(self.leaky[None], self.heatmaps, no_score)
        tight = strategy.agreement(self.s2[None], self.heatmaps, no_score)
        assert (leaky.item(), tight.item()) == pytest.approx((self.leaky_iou, self.tight_iou))
        segmenter = self.segmenter()
        prompts, masks, scores = strategy.segment(self.heatmaps, segmenter, state=None)
        assert prompts.points.tolist() == [[[24.0, 20.0]]]  # the peak, tried second, wins
        assert torch.equal(masks[0], self.s2) and scores.tolist() == pytest.approx([0.3])
        assert len(segmenter.calls) == 2  # one predict per candidate, no refine

    def test_segmenter_confidence_can_outvote_the_heat(self) -> None:
        # 0.25 x (0.9 - 0.3) outweighs the leaky mask's soft-IoU deficit
        assert 0.25 * (0.9 - 0.3) > self.tight_iou - self.leaky_iou
        strategy = CamConsensus(segmenter_score_weight=0.25, refine=False)
        prompts, masks, _ = strategy.segment(self.heatmaps, self.segmenter(), state=None)
        assert prompts.points[0, 0].tolist() == pytest.approx([10.7, 10.3])
        assert torch.equal(masks[0], self.leaky)

    def test_refine_prompts_the_winning_mask_at_its_centre(self) -> None:
        segmenter = self.segmenter()
        strategy = CamConsensus(segmenter_score_weight=0.0)
        prompts, masks, _ = strategy.segment(self.heatmaps, segmenter, state=None)
        assert prompts.points.tolist() == [[[23.5, 21.5]]]  # S2's centre of mass
        assert torch.equal(masks[0], self.s2) and len(segmenter.calls) == 3


def _points(segmenter: FakeSegmenter) -> list[Tensor]:
    return [call.points[0, 0] for call in segmenter.calls]


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
