"""Metrics against values computed by hand on tiny masks."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from lit_gradcam.evaluation.metrics import (
    MeanIoU,
    PointDistance,
    PointHitRate,
    SegmentationMetrics,
)
from lit_gradcam.prompt_types import BACKGROUND, FOREGROUND, PAD_LABEL, Prompts

FG, BG, PAD = FOREGROUND, BACKGROUND, PAD_LABEL


def masks(*pixel_sets: list[tuple[int, int]], size: tuple[int, int] = (6, 8)) -> Tensor:
    """(B, H, W) bool masks, each True at the given (x, y) pixels."""
    out = torch.zeros(len(pixel_sets), *size, dtype=torch.bool)
    for i, pixels in enumerate(pixel_sets):
        for x, y in pixels:
            out[i, y, x] = True
    return out


def prompts(points: list[list[tuple[float, float]]], labels: list[list[int]]) -> Prompts:
    return Prompts(torch.tensor(points, dtype=torch.float32), torch.tensor(labels))


SQUARE = [(x, y) for x in (1, 2, 3) for y in (1, 2, 3)]  # 3 x 3, centre of mass (2, 2)
FG_KEYS = {"iou", "iou_pixel", "hit_rate_fg", "distance_fg", "hit_rate_fg_cam", "distance_fg_cam"}


def test_mean_iou_of_one_third_and_one_with_empty_gt_excluded_and_counted() -> None:
    metric = MeanIoU()
    preds = masks([(0, 0), (1, 0)], [(5, 5), (6, 5)], [(3, 3)])
    target = masks([(1, 0), (2, 0)], [(5, 5), (6, 5)], [])
    metric.update(preds, target)
    assert metric.compute().item() == pytest.approx((1 / 3 + 1) / 2)
    assert (metric.num_scored.item(), metric.num_empty_gt.item()) == (2, 1)


def test_mean_iou_with_only_empty_gt_is_nan_not_a_division_by_zero() -> None:
    metric = MeanIoU()
    metric.update(masks([(1, 1)]), masks([]))
    assert math.isnan(metric.compute().item())
    assert metric.num_empty_gt.item() == 1


def test_hit_rate_counts_its_label_only_and_ignores_padding() -> None:
    target = masks(SQUARE, SQUARE)
    batch = prompts(
        [
            [(2.4, 1.6), (0.0, 0.0), (3.0, 3.0), (2.0, 2.0)],
            [(3.4, 3.4), (3.6, 2.0), (7.0, 5.0), (-9.0, 1.0)],
        ],
        [[FG, FG, BG, PAD], [FG, FG, BG, PAD]],
    )
    foreground, background = PointHitRate(FG), PointHitRate(BG)
    foreground.update(batch, target)
    background.update(batch, target)
    # fg: (2, 2) in, (0, 0) out, (3, 3) in, (4, 2) out; bg: (3, 3) in, (7, 5) out.
    assert foreground.compute().item() == pytest.approx(2 / 4)
    assert background.compute().item() == pytest.approx(1 / 2)
    assert PointHitRate(FG).higher_is_better and not PointHitRate(BG).higher_is_better


def test_hit_rate_clamps_points_into_the_image_and_skips_empty_gt() -> None:
    metric = PointHitRate(FG)
    target = masks([(0, 2)], [])
    metric.update(prompts([[(-3.0, 2.2)], [(0.0, 0.0)]], [[FG], [FG]]), target)
    assert (metric.hits.item(), metric.total.item()) == (1, 1)


def test_distance_is_averaged_over_points_then_images() -> None:
    metric = PointDistance(FG)
    target = masks(SQUARE, SQUARE, [])
    batch = prompts(
        [
            [(5.0, 6.0), (2.0, -1.0), (2.0, 2.0)],  # 3-4-5 and 3 from (2, 2); a bg at 0
            [(8.0, 10.0), (50.0, 50.0), (0.0, 0.0)],  # 6-8-10; padding far away
            [(0.0, 0.0), (1.0, 1.0), (2.0, 2.0)],  # empty GT: excluded
        ],
        [[FG, FG, BG], [FG, PAD, PAD], [FG, FG, FG]],
    )
    metric.update(batch, target)
    assert metric.compute().item() == pytest.approx(((5 + 3) / 2 + 10) / 2)
    assert metric.num_scored.item() == 2
    background = PointDistance(BG)
    background.update(batch, target)
    assert background.compute().item() == pytest.approx(0.0)
    assert background.num_scored.item() == 1


def test_segmentation_metrics_without_background_points() -> None:
    metrics = SegmentationMetrics()
    gt = masks([(1, 0), (2, 0)], [(5, 5), (6, 5)], [])
    pred = masks([(0, 0), (1, 0)], [(5, 5), (6, 5)], [(3, 3)])
    batch = prompts([[(1.0, 0.0)], [(0.0, 5.0)], [(1.0, 1.0)]], [[FG], [FG], [FG]])
    metrics.update(batch, pred, gt)
    values = metrics.compute()
    assert set(values) == FG_KEYS
    assert values["iou"] == pytest.approx((1 / 3 + 1) / 2)
    assert values["iou_pixel"] == pytest.approx(3 / 5)  # (1 + 2) / (3 + 2), empty GT left out
    assert values["hit_rate_fg"] == values["hit_rate_fg_cam"] == pytest.approx(1 / 2)
    assert values["distance_fg"] == values["distance_fg_cam"] == pytest.approx((0.5 + 5.5) / 2)
    assert all(isinstance(v, float) for v in values.values())
    assert (metrics.num_images, metrics.num_empty_gt) == (3, 1)
    metrics.reset()
    assert (metrics.num_images, metrics.num_empty_gt) == (0, 0)


def test_segmentation_metrics_with_background_points() -> None:
    metrics = SegmentationMetrics()
    gt = masks(SQUARE)
    batch = prompts([[(2.0, 2.0), (5.0, 6.0), (2.0, 3.0)]], [[FG, BG, BG]])
    metrics.update(batch, gt, gt)
    values = metrics.compute()
    assert set(values) == FG_KEYS | {"hit_rate_bg", "distance_bg"}
    assert values["iou"] == values["iou_pixel"] == values["hit_rate_fg"] == 1.0
    assert values["hit_rate_bg"] == pytest.approx(1 / 2)
    assert values["distance_bg"] == pytest.approx((5 + 1) / 2)


def test_cam_prompts_are_scored_apart_from_the_final_prompts() -> None:
    """The heatmap's point misses, the refined point hits: only the `_cam` pair shows the miss."""
    metrics = SegmentationMetrics()
    gt = masks(SQUARE, SQUARE)
    final = prompts([[(2.0, 2.0)], [(3.0, 3.0)]], [[FG], [FG]])
    from_heat = prompts([[(2.0, 2.0)], [(7.0, 5.0)]], [[FG], [FG]])
    metrics.update(final, gt, gt, cam_prompts=from_heat)
    values = metrics.compute()
    assert values["hit_rate_fg"] == 1.0 and values["hit_rate_fg_cam"] == pytest.approx(1 / 2)
    assert values["distance_fg"] == pytest.approx((0 + math.hypot(1, 1)) / 2)
    assert values["distance_fg_cam"] == pytest.approx((0 + math.hypot(5, 3)) / 2)


def test_states_sum_when_synced_across_processes() -> None:
    """Fake a 2-process world where both ranks saw the same batch: sums double, means stay."""
    gt = masks(SQUARE, [])
    batch = prompts([[(2.0, 2.0), (7.0, 5.0)], [(0.0, 0.0), (1.0, 1.0)]], [[FG, BG], [FG, BG]])
    local, synced = SegmentationMetrics(), SegmentationMetrics()
    for metric in synced.children():
        metric.dist_sync_fn = lambda tensor, group=None: [tensor, tensor.clone()]
        metric.distributed_available_fn = lambda: True
    for metrics in (local, synced):
        metrics.update(batch, gt, gt)
    assert synced.compute() == local.compute()
    assert (synced.num_images, synced.num_empty_gt) == (4, 2)
    assert (local.num_images, local.num_empty_gt) == (2, 1)
    assert synced.iou.num_scored.item() == 1  # the local state is restored after each sync


def test_segmentation_metrics_on_empty_gt_only_are_nan_without_warnings() -> None:
    metrics = SegmentationMetrics()
    metrics.update(prompts([[(1.0, 1.0)]], [[FG]]), masks([(1, 1)]), masks([]))
    values = metrics.compute()
    assert set(values) == FG_KEYS
    assert all(math.isnan(v) for v in values.values())
    assert (metrics.num_images, metrics.num_empty_gt) == (1, 1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu() -> None:
    gt = masks(SQUARE, [(1, 0), (2, 0)], [])
    pred = masks(SQUARE[:4], [(0, 0), (1, 0)], [(3, 3)])
    batch = prompts(
        [[(2.0, 2.0), (7.0, 5.0)], [(1.0, 0.0), (0.0, 5.0)], [(1.0, 1.0), (0.0, 0.0)]],
        [[FG, BG], [FG, BG], [FG, PAD]],
    )
    on_cpu, on_cuda = SegmentationMetrics(), SegmentationMetrics().cuda()
    on_cpu.update(batch, pred, gt)
    on_cuda.update(batch.to("cuda"), pred.cuda(), gt.cuda())
    assert on_cuda.compute() == pytest.approx(on_cpu.compute())
