"""SemanticMetrics against an independent numpy / scipy computation and hand-counted cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage
from torch import Tensor

from lit_gradcam.evaluation.semantic_metrics import SemanticMetrics

CLASSES = ("circle", "square", "triangle")
IGNORED = 255
EIGHT_CONNECTED = np.ones((3, 3), dtype=int)


def reference(
    pred: np.ndarray, gt: np.ndarray, points: np.ndarray, point_classes: np.ndarray, classes: int
) -> dict[str, float]:
    """The metrics by numpy: a bincount confusion matrix and scipy's 8-connected labelling."""
    scored = gt != IGNORED
    confusion = np.bincount(
        gt[scored] * (classes + 1) + pred[scored], minlength=(classes + 1) ** 2
    ).reshape(classes + 1, classes + 1)
    tp = np.diag(confusion).astype(float)
    union = confusion.sum(0) + confusion.sum(1) - tp
    with np.errstate(invalid="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
    batch, height, width = gt.shape
    xs = np.clip(np.rint(points[..., 0]), 0, width - 1).astype(int)
    ys = np.clip(np.rint(points[..., 1]), 0, height - 1).astype(int)
    objects = hits = stray = total = 0
    for b in range(batch):
        for c in range(1, classes + 1):
            labels, count = ndimage.label(gt[b] == c, structure=EIGHT_CONNECTED)
            mine = point_classes[b] == c
            hit = set(labels[ys[b][mine], xs[b][mine]].tolist()) - {0}
            objects, hits = objects + count, hits + len(hit)
        real = point_classes[b] > 0
        total += int(real.sum())
        stray += int((gt[b][ys[b], xs[b]] != point_classes[b])[real].sum())
    return {
        "miou": float(np.nanmean(iou)) if not np.isnan(iou).all() else math.nan,
        "iou_background": iou[0],
        **{f"iou_{name}": iou[i + 1] for i, name in enumerate(CLASSES[:classes])},
        "object_hit_rate": hits / objects if objects else math.nan,
        "stray_point_rate": stray / total if total else math.nan,
        "num_objects": objects,
        "num_points": total,
    }


def blobby_maps(
    generator: torch.Generator, batch: int, classes: int, size: int = 24
) -> tuple[Tensor, Tensor]:
    """Random (pred, gt) class maps of 3 x 3 blocks (objects of several pixels, some touching
    only at a corner), with scattered IGNORED pixels in the GT."""
    coarse = torch.randint(0, classes + 1, (2, batch, size // 3, size // 3), generator=generator)
    pred, gt = coarse.repeat_interleave(3, -1).repeat_interleave(3, -2)
    gt = gt.masked_fill(torch.rand(gt.shape, generator=generator) < 0.05, IGNORED)
    return pred, gt


def random_points(
    generator: torch.Generator, batch: int, classes: int, size: int = 24, k: int = 6
) -> tuple[Tensor, Tensor]:
    """Points anywhere, some outside the image (clamped), with classes 0 (padding) .. C."""
    points = torch.rand(batch, k, 2, generator=generator) * (size + 4) - 2
    return points, torch.randint(0, classes + 1, (batch, k), generator=generator)


def results(metrics: SemanticMetrics) -> dict[str, float]:
    return {
        **metrics.compute(),
        "num_objects": metrics.num_objects,
        "num_points": metrics.num_points,
    }


def assert_same(actual: dict[str, float], expected: dict[str, float]) -> None:
    assert actual.keys() == expected.keys()
    for key, value in expected.items():
        assert actual[key] == pytest.approx(value, nan_ok=True, abs=1e-6), key


def single(
    pred: Tensor, gt: Tensor, points: list[tuple[float, float]], point_classes: list[int]
) -> SemanticMetrics:
    """Metrics of one image (H, W) and its points."""
    metrics = SemanticMetrics(CLASSES)
    xy = torch.tensor(points, dtype=torch.float32).reshape(1, -1, 2)
    metrics.update(pred[None], gt[None], xy, torch.tensor([point_classes], dtype=torch.long))
    return metrics


def test_batches_accumulate_to_one_big_batch_and_match_numpy() -> None:
    generator = torch.Generator().manual_seed(0)
    batches = [(*blobby_maps(generator, 3, 3), *random_points(generator, 3, 3)) for _ in range(4)]
    accumulated, whole = SemanticMetrics(CLASSES), SemanticMetrics(CLASSES)
    for batch in batches:
        accumulated.update(*batch)
    pred, gt, points, point_classes = (torch.cat(parts) for parts in zip(*batches, strict=True))
    whole.update(pred, gt, points, point_classes)
    expected = reference(pred.numpy(), gt.numpy(), points.numpy(), point_classes.numpy(), 3)
    assert 0 < expected["object_hit_rate"] < 1 and 0 < expected["stray_point_rate"] < 1
    assert_same(results(accumulated), expected)
    assert_same(results(whole), expected)


def test_predictions_under_ignored_pixels_change_nothing() -> None:
    generator = torch.Generator().manual_seed(1)
    pred, gt = blobby_maps(generator, 4, 3)
    points, point_classes = random_points(generator, 4, 3)
    first, second = SemanticMetrics(CLASSES), SemanticMetrics(CLASSES)
    first.update(pred, gt, points, point_classes)
    other = torch.randint(0, 4, pred.shape, generator=generator)
    second.update(torch.where(gt == IGNORED, other, pred), gt, points, point_classes)
    assert (gt == IGNORED).any()
    assert_same(results(second), results(first))


def test_ignored_pixels_are_no_object_and_a_point_on_them_is_stray() -> None:
    gt = torch.full((4, 4), IGNORED)
    gt[0, 0] = 1
    metrics = single(gt.clamp(max=1), gt, [(0.0, 0.0), (2.0, 2.0)], [1, 1])
    assert (metrics.num_objects, metrics.num_points) == (1, 2)
    values = metrics.compute()
    assert (values["object_hit_rate"], values["stray_point_rate"]) == (1.0, 0.5)
    assert values["iou_circle"] == 1.0  # the prediction of 1 on IGNORED pixels is not scored


def test_class_absent_everywhere_is_nan_and_left_out_of_the_mean() -> None:
    gt = torch.tensor([[0, 1, 1], [0, 2, 2]])
    pred = torch.tensor([[0, 1, 2], [0, 2, 2]])
    values = single(pred, gt, [], []).compute()
    assert math.isnan(values["iou_triangle"])
    assert values["iou_background"] == 1.0
    assert values["iou_circle"] == pytest.approx(1 / 2)
    assert values["iou_square"] == pytest.approx(2 / 3)
    assert values["miou"] == pytest.approx((1 + 1 / 2 + 2 / 3) / 3)


def test_object_hit_rate_counts_each_object_once() -> None:
    gt = torch.zeros(6, 8, dtype=torch.long)
    gt[0:2, 0:2] = 1  # object A of circle
    gt[2, 2] = 1  # touches A at a corner only: still A (8-connectivity)
    gt[4:6, 5:8] = 1  # object B of circle
    gt[0:2, 5:7] = 2  # one square
    points = [(0.0, 0.0), (1.2, 0.8), (2.0, 2.0), (5.0, 0.0)]  # three in A, one on the square
    metrics = single(gt, gt, points, [1, 1, 1, 1])
    assert metrics.num_objects == 3
    assert metrics.compute()["object_hit_rate"] == pytest.approx(1 / 3)  # A only
    square_hit = single(gt, gt, [*points, (6.0, 1.0)], [1, 1, 1, 1, 2])
    assert square_hit.compute()["object_hit_rate"] == pytest.approx(2 / 3)


def test_stray_points_are_those_off_their_own_class() -> None:
    gt = torch.zeros(4, 4, dtype=torch.long)
    gt[0:2, 0:2] = 1
    gt[2:4, 2:4] = 2
    points = [(0.4, 0.4), (3.0, 3.0), (3.0, 3.0), (0.0, 3.0), (9.0, -9.0), (-1.0, -1.0)]
    # in circle; square on square; circle on square; on background; clamped to (3, 0): bg;
    # clamped to (0, 0): in circle
    values = single(gt, gt, points, [1, 2, 1, 2, 3, 1]).compute()
    assert values["stray_point_rate"] == pytest.approx(3 / 6)


def test_padding_points_are_ignored() -> None:
    gt = torch.zeros(4, 4, dtype=torch.long)
    gt[0:2, 0:2] = 1
    plain = single(gt, gt, [(3.0, 3.0)], [1])
    padded = single(gt, gt, [(3.0, 3.0), (0.0, 0.0), (3.0, 3.0)], [1, 0, 0])
    assert padded.num_points == plain.num_points == 1
    assert_same(padded.compute(), plain.compute())
    assert plain.compute()["object_hit_rate"] == 0.0


@pytest.mark.filterwarnings("ignore:The ``compute`` method of metric")
def test_no_update_gives_nan_everywhere_and_zero_counts() -> None:
    metrics = SemanticMetrics(CLASSES)
    values = metrics.compute()
    assert set(values) == {"miou", "iou_background", "object_hit_rate", "stray_point_rate"} | {
        f"iou_{name}" for name in CLASSES
    }
    assert all(math.isnan(value) for value in values.values())
    assert (metrics.num_objects, metrics.num_points) == (0, 0)


def test_no_points_and_no_objects_give_nan_rates() -> None:
    gt = torch.zeros(3, 3, dtype=torch.long)
    values = single(gt, gt, [(1.0, 1.0)], [0]).compute()
    assert math.isnan(values["object_hit_rate"]) and math.isnan(values["stray_point_rate"])
    assert values["miou"] == values["iou_background"] == 1.0


def test_reset_forgets_everything() -> None:
    gt = torch.ones(3, 3, dtype=torch.long)
    metrics = single(gt, gt, [(1.0, 1.0)], [1])
    metrics.reset()
    metrics.update(gt[None], gt[None], torch.tensor([[[1.0, 1.0]]]), torch.tensor([[2]]))
    assert (metrics.num_objects, metrics.num_points) == (1, 1)
    values = metrics.compute()
    assert (values["object_hit_rate"], values["stray_point_rate"]) == (0.0, 1.0)


@pytest.mark.filterwarnings("ignore:The ``compute`` method of metric")
def test_keys_replace_slashes_and_refuse_clashes() -> None:
    values = SemanticMetrics(["cat/dog", "car"]).compute()
    assert {"iou_cat_dog", "iou_car"} <= values.keys()
    for classes in (["background"], ["a/b", "a_b"], []):
        with pytest.raises(ValueError):
            SemanticMetrics(classes)


@pytest.mark.parametrize(
    ("pred", "gt", "point_class"),
    [(4, 0, 1), (IGNORED, 0, 1), (0, 4, 1), (0, -1, 1), (0, 0, 4), (0, 0, -1)],
)
def test_values_outside_the_class_range_are_refused(pred: int, gt: int, point_class: int) -> None:
    with pytest.raises(ValueError, match="outside"):
        single(torch.full((2, 2), pred), torch.full((2, 2), gt), [(0.0, 0.0)], [point_class])


def test_mismatched_shapes_are_refused() -> None:
    metrics = SemanticMetrics(CLASSES)
    maps = torch.zeros(2, 3, 3, dtype=torch.long)
    with pytest.raises(ValueError, match="same"):
        metrics.update(maps, maps[:1], torch.zeros(2, 1, 2), torch.zeros(2, 1, dtype=torch.long))
    with pytest.raises(ValueError, match="point_classes"):
        metrics.update(maps, maps, torch.zeros(2, 1, 2), torch.zeros(2, 2, dtype=torch.long))
