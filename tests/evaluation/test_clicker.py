"""The simulated clicker: `next_click` against SAM 2's clicker and an exact brute-force depth,
and the click loop against a per-image loop written out here, on real segmenters."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch
from torch import Tensor

from lit_gradcam.evaluation.clicker import click_ious, next_click
from lit_gradcam.prompt_types import BACKGROUND, FOREGROUND, PAD_LABEL, Prompts
from lit_gradcam.segmenters.base import Segmenter
from lit_gradcam.segmenters.grabcut import GrabCutSegmenter

SIZES = [(1, 1), (5, 7), (16, 16), (24, 37), (48, 64), (61, 40)]


def _random_mask(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """An ellipse or rectangle (often cut by the border), a blocky blob, or salt noise."""
    yy, xx = np.mgrid[:height, :width]
    kind = rng.integers(4)
    if kind == 0:
        cy, cx = rng.uniform(-0.2, 1.2) * height, rng.uniform(-0.2, 1.2) * width
        ry, rx = rng.uniform(0.5, max(height, width) / 2, size=2)
        return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
    if kind == 1:
        y0, y1 = np.sort(rng.integers(0, height + 1, size=2))
        x0, x1 = np.sort(rng.integers(0, width + 1, size=2))
        return (yy >= y0) & (yy <= y1) & (xx >= x0) & (xx <= x1)
    if kind == 2:
        block = int(rng.integers(1, 6))
        coarse = rng.random((height // block + 1, width // block + 1)) < 0.5
        return np.kron(coarse, np.ones((block, block), bool))[:height, :width]
    return rng.random((height, width)) < rng.uniform(0.05, 0.5)


def _random_prediction(rng: np.random.Generator, gt: np.ndarray) -> np.ndarray:
    """A prediction of `gt`: empty, full, exact, shifted, grown, shrunk, noisy or unrelated."""
    kind = rng.integers(8)
    kernel = np.ones((3, 3), np.uint8)
    steps = int(rng.integers(1, 4))
    if kind == 0:
        return np.zeros_like(gt)
    if kind == 1:
        return np.ones_like(gt)
    if kind == 2:
        return gt.copy()
    if kind == 3:
        return np.roll(gt, tuple(rng.integers(-3, 4, size=2)), axis=(0, 1))
    if kind == 4:
        return cv2.dilate(gt.astype(np.uint8), kernel, iterations=steps).astype(bool)
    if kind == 5:
        return cv2.erode(gt.astype(np.uint8), kernel, iterations=steps).astype(bool)
    if kind == 6:
        return gt ^ (rng.random(gt.shape) < 0.05)
    return _random_mask(rng, *gt.shape)


def _random_error_maps(seed: int, count: int, size: tuple[int, int]) -> tuple[Tensor, Tensor]:
    rng = np.random.default_rng(seed)
    gts = [_random_mask(rng, *size) for _ in range(count)]
    preds = [_random_prediction(rng, gt) for gt in gts]
    return torch.from_numpy(np.stack(gts)), torch.from_numpy(np.stack(preds))


def test_next_click_equals_sam2_on_1000_random_error_maps() -> None:
    sam2_utils = pytest.importorskip("sam2.modeling.sam2_utils")
    for seed, size in enumerate(SIZES):
        gt, pred = _random_error_maps(seed, 1000 // len(SIZES) + 1, size)
        for given in (pred, None):
            expected_points, expected_labels = sam2_utils.sample_one_point_from_error_center(
                gt[:, None], None if given is None else given[:, None], padding=True
            )
            points, labels = next_click(gt, given)
            assert points.dtype == torch.float32 and labels.dtype == torch.long
            theirs_labels = expected_labels[:, 0].long()
            differ = (points != expected_points[:, 0]).any(1) | (labels != theirs_labels)
            assert int(differ.sum()) <= len(gt) // 100, size
            for index in differ.nonzero().flatten().tolist():
                # SAM 2's float32 depths may break an exact tie either way: both clicks must
                # then be equally deep
                pred_mask = np.zeros_like(gt[index]) if given is None else given[index].numpy()
                ours = _click_depth(gt[index].numpy(), pred_mask, points[index], labels[index])
                theirs = _click_depth(
                    gt[index].numpy(), pred_mask, expected_points[index, 0], theirs_labels[index]
                )
                assert ours == theirs, (size, index)


def _click_depth(gt: np.ndarray, pred: np.ndarray, point: Tensor, label: Tensor) -> int:
    """The exact squared depth of a click in the error region its label names."""
    region = gt & ~pred if int(label) == 1 else ~gt & pred
    x, y = point.int().tolist()
    return int(_squared_depths(region)[y, x])


def _squared_depths(region: np.ndarray) -> np.ndarray:
    """(H, W) exact integer squared distance of each pixel of `region` to the nearest pixel
    outside it or the image."""
    height, width = region.shape
    outside = np.ones((height + 2, width + 2), bool)
    outside[1:-1, 1:-1] = ~region
    oy, ox = np.nonzero(outside)
    yy, xx = np.mgrid[:height, :width]
    squared = (yy.reshape(-1, 1) + 1 - oy) ** 2 + (xx.reshape(-1, 1) + 1 - ox) ** 2
    return squared.min(1).reshape(height, width)


def _brute_force_click(gt: np.ndarray, pred: np.ndarray) -> tuple[tuple[int, int], int]:
    """The clicker's rule with exact integer squared distances: the deepest pixel of the deeper
    error region (false negatives win only when strictly deeper), the first in row-major order
    on ties, depth measured to the nearest pixel outside the region or the image."""
    width = gt.shape[1]
    depths = [_squared_depths(region).ravel() for region in (gt & ~pred, ~gt & pred)]
    fn_at, fp_at = int(depths[0].argmax()), int(depths[1].argmax())
    positive = depths[0][fn_at] > depths[1][fp_at]
    y, x = divmod(fn_at if positive else fp_at, width)
    return (x, y), int(positive)


def test_next_click_equals_an_exact_brute_force_depth() -> None:
    for seed, size in enumerate(SIZES[:4]):
        gt, pred = _random_error_maps(100 + seed, 40, size)
        points, labels = next_click(gt, pred)
        for index in range(len(gt)):
            (x, y), label = _brute_force_click(gt[index].numpy(), pred[index].numpy())
            assert points[index].tolist() == [x, y] and labels[index] == label, (size, index)


def test_the_first_click_on_a_crescent_is_inside_it_unlike_its_centroid() -> None:
    yy, xx = torch.meshgrid(torch.arange(40), torch.arange(40), indexing="ij")
    inner = (yy - 20) ** 2 + (xx - 24) ** 2 <= 13**2
    crescent = ((yy - 20) ** 2 + (xx - 20) ** 2 <= 15**2) & ~inner
    cy, cx = (int(v) for v in torch.nonzero(crescent).float().mean(0).round())
    assert not crescent[cy, cx]
    points, labels = next_click(crescent[None], None)
    x, y = (int(v) for v in points[0])
    assert crescent[y, x] and labels[0] == FOREGROUND
    assert x < cx  # in the crescent's thick left part


def test_a_deeper_false_positive_gets_a_background_click_and_ties_go_to_background() -> None:
    gt = torch.zeros(1, 20, 20, dtype=torch.bool)
    gt[0, 2:5, 2:5] = True  # missed: a 3x3 false negative, depth 2
    pred = torch.zeros_like(gt)
    pred[0, 10:17, 10:17] = True  # a 7x7 false positive, depth 4
    points, labels = next_click(gt, pred)
    assert points[0].tolist() == [13.0, 13.0] and labels[0] == BACKGROUND
    pred[0] = False
    pred[0, 10:13, 10:13] = True  # equally deep as the false negative
    assert next_click(gt, pred)[1][0] == BACKGROUND


class DiscSegmenter(Segmenter):
    """Masks drawn from the prompts alone: discs of `radius` around the foreground points and
    the box, less discs around the background points. Its state is the images' indices and
    their size; it records each `predict` call (state indices and prompts) in `calls`."""

    name = "discs"

    def __init__(self, radius: int) -> None:
        self.radius = radius
        self.calls: list[tuple[list[int], Prompts]] = []

    def embed(self, images: Tensor) -> tuple[Tensor, tuple[int, int]]:
        return torch.arange(len(images)), (images.shape[2], images.shape[3])

    def select(self, state: tuple[Tensor, tuple[int, int]], index: Tensor) -> tuple:
        return state[0][index], state[1]

    def predict(
        self,
        state: tuple[Tensor, tuple[int, int]],
        prompts: Prompts,
        heatmaps: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        indices, (height, width) = state
        self.calls.append((indices.tolist(), prompts))
        yy, xx = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
        masks = torch.zeros(len(indices), height, width, dtype=torch.bool)
        for b in range(len(indices)):
            if prompts.boxes is not None:
                x0, y0, x1, y1 = prompts.boxes[b].tolist()
                masks[b] |= (xx >= x0) & (xx <= x1) & (yy >= y0) & (yy <= y1)
            for label in (FOREGROUND, BACKGROUND):  # background drawn last: it wins
                for x, y in prompts.points[b, prompts.labels[b] == label].tolist():
                    disc = (xx - x) ** 2 + (yy - y) ** 2 <= self.radius**2
                    masks[b] = masks[b] | disc if label == FOREGROUND else masks[b] & ~disc
        return masks, torch.zeros(len(indices))


def _iou(pred: Tensor, gt: Tensor) -> float:
    return (pred & gt).sum().item() / (pred | gt).sum().item()


def _reference_curve(
    segmenter: Segmenter,
    state: object,
    gt: Tensor,
    settings: dict[str, int | float],
    initial: Prompts | None = None,
) -> list[float]:
    """The click loop for one image (a batch of one), clicks from `_brute_force_click`."""
    points, labels, box, curve = [], [], None, [math.nan]
    pred = torch.zeros_like(gt)
    if initial is not None:
        points, labels = initial.points[0].tolist(), initial.labels[0].tolist()
        box = initial.boxes
        pred = segmenter.predict(state, initial)[0][0]
        curve[0] = _iou(pred, gt)
    for clicks in range(1, settings["max_clicks"] + 1):
        done = clicks > settings["always_clicks"] and curve[-1] >= settings["stop_iou"]
        if done or torch.equal(pred, gt):
            break
        point, label = _brute_force_click(gt.numpy(), pred.numpy())
        points.append(list(point))
        labels.append(label)
        prompts = Prompts(torch.tensor([points]).float(), torch.tensor([labels]), box)
        pred = segmenter.predict(state, prompts)[0][0]
        curve.append(_iou(pred, gt))
    return curve + [math.nan] * (settings["max_clicks"] + 1 - len(curve))


def _disc(height: int, width: int, cy: int, cx: int, radius: int) -> Tensor:
    yy, xx = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2


def _disc_scene() -> Tensor:
    """Five 32x40 GT masks: a disc of the segmenter's radius, a thin bar, an L, a square and
    the disc with one more pixel."""
    gt = torch.zeros(5, 32, 40, dtype=torch.bool)
    gt[0] = _disc(32, 40, 15, 20, 4)  # the first click segments it exactly
    gt[1, 10:16, 0:30] = True  # touches the left border
    gt[2, 4:28, 4:10] = True
    gt[2, 22:28, 4:30] = True
    gt[3, 4:30, 8:34] = True  # too big for few discs: clicks to the end
    gt[4] = gt[0]
    gt[4, 15, 25] = True  # above stop_iou after one click, yet not exact
    return gt


SETTINGS = {"max_clicks": 8, "stop_iou": 0.7, "always_clicks": 2}


def test_the_click_loop_equals_a_per_image_loop_and_runs_only_unfinished_images() -> None:
    gt = _disc_scene()
    segmenter = DiscSegmenter(radius=4)
    state = segmenter.embed(torch.zeros(5, 3, 32, 40, dtype=torch.uint8))
    curves = click_ious(segmenter, state, gt, **SETTINGS)
    calls = list(segmenter.calls)  # before the reference adds its own
    expected = [
        _reference_curve(segmenter, segmenter.select(state, torch.tensor([i])), gt[i], SETTINGS)
        for i in range(5)
    ]
    assert curves.dtype == torch.float64 and curves.shape == (5, 9)
    torch.testing.assert_close(curves, torch.tensor(expected, dtype=torch.float64), equal_nan=True)
    assert curves[:, 0].isnan().all()
    assert curves[0, 1] == 1.0 and curves[0, 2:].isnan().all()  # exact mask: nothing to click
    assert not curves[3, 1:].isnan().any() and (curves[3, 1:] < SETTINGS["stop_iou"]).all()
    # every image clicks always_clicks times, even one above stop_iou after its first click
    assert curves[4, 1] >= SETTINGS["stop_iou"] and curves[4, 1] < 1
    assert not curves[4, 2].isnan()
    stopped = [i for i in (1, 2) if curves[i, 1:].isnan().any()]
    assert stopped, "no image stopped at stop_iou: the scene does not test stopping"
    for i in stopped:
        last = int((~curves[i].isnan()).nonzero().max())
        assert last > SETTINGS["always_clicks"] and curves[i, last] >= SETTINGS["stop_iou"]
        assert (curves[i, SETTINGS["always_clicks"] : last] < SETTINGS["stop_iou"]).all()
    # each call segments exactly the images still clicking, with all their clicks so far
    assert len(calls) == SETTINGS["max_clicks"]  # the square clicks to the end
    for clicks, (rows, prompts) in enumerate(calls, start=1):
        assert rows == (~curves[:, clicks].isnan()).nonzero()[:, 0].tolist()
        assert prompts.points.shape == (len(rows), clicks, 2)
        assert (prompts.labels != PAD_LABEL).all()


def test_initial_prompts_make_column_0_and_stay_in_front_of_the_clicks() -> None:
    gt = _disc_scene()[1:4]
    segmenter = DiscSegmenter(radius=4)
    state = segmenter.embed(torch.zeros(3, 3, 32, 40, dtype=torch.uint8))
    initial = Prompts(
        points=torch.tensor(
            [[[5.0, 12.0], [25.0, 12.0]], [[6.0, 6.0], [0.0, 0.0]], [[20, 16], [20, 16]]]
        ),
        labels=torch.tensor([[1, 1], [1, PAD_LABEL], [0, 1]]),
        boxes=torch.tensor([[0.0, 11.0, 8.0, 14.0], [4.0, 4.0, 9.0, 20.0], [30.0, 2.0, 36.0, 5.0]]),
    )
    curves = click_ious(segmenter, state, gt, initial=initial, **SETTINGS)
    expected = [
        _reference_curve(
            segmenter,
            segmenter.select(state, torch.tensor([i])),
            gt[i],
            SETTINGS,
            initial.select(i),
        )
        for i in range(3)
    ]
    torch.testing.assert_close(curves, torch.tensor(expected, dtype=torch.float64), equal_nan=True)
    initial_masks = DiscSegmenter(radius=4).predict(state, initial)[0]
    for i in range(3):
        assert curves[i, 0] == _iou(initial_masks[i], gt[i])
    rows, first_click = segmenter.calls[1]  # calls[0] is the initial prompts' own
    assert rows == [0, 1, 2]
    torch.testing.assert_close(first_click.boxes, initial.boxes)
    for i in (0, 2):  # two initial points, then the click
        assert first_click.points[i, :2].tolist() == initial.points[i].tolist()
        assert first_click.labels[i, :2].tolist() == initial.labels[i].tolist()
    # one initial point (its padding dropped), then the click, then padding
    assert first_click.points[1, 0].tolist() == [6.0, 6.0]
    assert first_click.labels[1, 0] == FOREGROUND and first_click.labels[1, 2] == PAD_LABEL


def test_a_perfect_initial_mask_is_not_clicked_on() -> None:
    gt = _disc(32, 40, 15, 20, 4)[None]
    segmenter = DiscSegmenter(radius=4)
    state = segmenter.embed(torch.zeros(1, 3, 32, 40, dtype=torch.uint8))
    initial = Prompts(torch.tensor([[[20.0, 15.0]]]), torch.tensor([[FOREGROUND]]))
    curves = click_ious(segmenter, state, gt, initial=initial, **SETTINGS)
    assert curves[0, 0] == 1.0 and curves[0, 1:].isnan().all()
    assert len(segmenter.calls) == 1


def test_empty_ground_truth_is_refused() -> None:
    segmenter = DiscSegmenter(radius=4)
    state = segmenter.embed(torch.zeros(2, 3, 8, 8, dtype=torch.uint8))
    gt = torch.zeros(2, 8, 8, dtype=torch.bool)
    gt[0, 2:4, 2:4] = True
    with pytest.raises(ValueError, match="non-empty GT"):
        click_ious(segmenter, state, gt)


def _shapes_scene() -> tuple[Tensor, Tensor]:
    """Three noisy 48x64 RGB images on a colour gradient, each with a dull-coloured object (an
    ellipse, two squares, a crescent) that GrabCut needs several clicks for, and their masks."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:48, :64]
    gradient = np.stack([xx * 3, yy * 4, np.full_like(xx, 90)], -1)
    masks = np.stack(
        [
            ((yy - 24) / 12) ** 2 + ((xx - 30) / 18) ** 2 <= 1,
            ((np.abs(yy - 12) <= 6) & (np.abs(xx - 14) <= 8))
            | ((np.abs(yy - 34) <= 6) & (np.abs(xx - 48) <= 8)),
            (((yy - 24) ** 2 + (xx - 32) ** 2) <= 18**2)
            & (((yy - 24) ** 2 + (xx - 40) ** 2) > 14**2),
        ]
    )
    images = np.repeat(gradient[None], 3, 0) + rng.normal(0, 20, (3, 48, 64, 3))
    colours = ([120, 90, 120], [90, 120, 90], [100, 100, 140])
    for image, mask, colour in zip(images, masks, colours, strict=True):
        image[mask] = np.asarray(colour) + rng.normal(0, 20, (mask.sum(), 3))
    images = torch.from_numpy(images.clip(0, 255).astype(np.uint8)).permute(0, 3, 1, 2)
    return images, torch.from_numpy(masks)


def test_grabcut_in_the_click_loop_equals_grabcut_image_by_image() -> None:
    images, gt = _shapes_scene()
    segmenter = GrabCutSegmenter()
    state = segmenter.embed(images)
    settings = {"max_clicks": 5, "stop_iou": 0.9, "always_clicks": 2}
    curves = click_ious(segmenter, state, gt, **settings)
    expected = [
        _reference_curve(segmenter, segmenter.embed(images[i : i + 1]), gt[i], settings)
        for i in range(3)
    ]
    torch.testing.assert_close(curves, torch.tensor(expected, dtype=torch.float64), equal_nan=True)
    assert (curves[:, 1] < 0.6).all(), "one click suffices: the scene does not test clicking on"
    assert (curves.nan_to_num(0).max(1).values > 0.85).all(), curves
