"""CamConsensus: candidates segmented on the shared state, the mask that agrees best with the
heatmap wins, and the cascade's second pass from the winner's centre."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from helpers.heatmaps import H, W, as_heatmaps, blob, check, disc
from torch import Tensor

from lit_gradcam.prompt_types import Prompts
from lit_gradcam.prompts.strategies import CamConsensus
from lit_gradcam.segmenters.base import Segmenter


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

    def predict(
        self, state: Any, prompts: Prompts, heatmaps: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
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

    def predict(
        self, state: Any, prompts: Prompts, heatmaps: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
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
