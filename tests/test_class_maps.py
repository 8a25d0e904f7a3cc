"""The method on images of several classes and objects: the merged class map, the per-object
strategies and oracles, and a whole batch through `BatchPipeline.run_class_maps`."""

from collections.abc import Callable

import numpy as np
import pytest
import torch
import torchvision
from scipy import ndimage

from lit_gradcam.errors import ConfigError
from lit_gradcam.method.objects import ClassMapOutput, merge_class_maps, per_image_points
from lit_gradcam.method.pipeline import BatchPipeline
from lit_gradcam.prompt_types import FOREGROUND, PAD_LABEL, Prompts
from lit_gradcam.prompts.geometry import connected_components, split_at_peaks
from lit_gradcam.prompts.objects import GroundTruthObjects, PerObject, innermost_points
from lit_gradcam.prompts.strategies import WeightedCentroid
from lit_gradcam.segmenters.base import Segmenter


class RegionUnderThePoint(Segmenter):
    """Cuts the connected region of equal colour under the first point of each prompt set."""

    name = "region"

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        return images

    def select(self, state: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        return state[index]

    def predict(
        self, state: torch.Tensor, prompts: Prompts, heatmaps: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        masks = []
        for image, (x, y) in zip(state, prompts.points[:, 0].round().long().tolist(), strict=True):
            same = (image == image[:, y, x, None, None]).all(0).numpy()
            regions, _ = ndimage.label(same)
            masks.append(torch.from_numpy(regions == regions[y, x]))
        return torch.stack(masks), torch.ones(len(masks))


def test_merged_map_gives_each_pixel_the_hottest_covering_class() -> None:
    generator = torch.Generator().manual_seed(0)
    image = torch.tensor([0, 0, 0, 1, 1])
    cls = torch.tensor([0, 2, 3, 1, 2])
    masks = torch.rand(5, 6, 7, generator=generator) < 0.5
    heat = torch.rand(5, 6, 7, generator=generator)
    heat[1, 0, 0] = heat[0, 0, 0] = 0.5  # a tie: the class listed first wins
    masks[:2, 0, 0] = True
    merged = merge_class_maps(masks, heat, image, cls, batch=3, num_classes=4).numpy()
    expected = np.zeros((3, 6, 7), dtype=np.uint8)
    for b in range(3):
        for y in range(6):
            for x in range(7):
                best, best_heat = 0, -1.0
                for p in sorted(range(5), key=lambda p: int(cls[p])):
                    if image[p] == b and masks[p, y, x] and heat[p, y, x] > best_heat:
                        best, best_heat = int(cls[p]) + 1, float(heat[p, y, x])
                expected[b, y, x] = best
    assert np.array_equal(merged, expected)
    assert merged[0, 0, 0] == 1 and not merged[2].any()


def test_object_points_are_gathered_per_image_with_their_class() -> None:
    points = torch.arange(3 * 2 * 2, dtype=torch.float32).view(3, 2, 2)
    valid = torch.tensor([[True, True], [False, True], [True, False]])
    prompts, classes = per_image_points(
        points, valid, torch.tensor([1, 1, 0]), torch.tensor([0, 4, 2]), batch=3
    )
    assert prompts.points.shape == (3, 3, 2)
    assert classes.tolist() == [[3, 0, 0], [1, 1, 5], [0, 0, 0]]
    assert prompts.labels.tolist() == [
        [FOREGROUND, PAD_LABEL, PAD_LABEL],
        [FOREGROUND] * 3,
        [PAD_LABEL] * 3,
    ]
    assert prompts.points[1].tolist() == [[0.0, 1.0], [2.0, 3.0], [6.0, 7.0]]


def test_innermost_point_is_the_deepest_pixel_of_the_mask() -> None:
    generator = np.random.default_rng(0)
    masks = np.zeros((4, 20, 30), dtype=bool)
    for mask in masks:
        x0, y0 = generator.integers(0, 12, 2)
        mask[y0 : y0 + generator.integers(4, 8), x0 : x0 + generator.integers(5, 15)] = True
    masks[3, :, :] = False
    masks[3, 0:5, 0:5] = True  # touching the image's edge, which counts as border
    points = innermost_points(torch.from_numpy(masks))
    for mask, (x, y) in zip(masks, points.long().tolist(), strict=True):
        depth = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
        assert mask[y, x] and depth[y, x] == pytest.approx(depth.max(), abs=1e-3)


def _two_objects() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One image with two flat squares of one class and one of another, its class map and the
    first class's CAM (a warm blob on each of its squares)."""
    image = torch.full((1, 3, 40, 60), 30, dtype=torch.uint8)
    gt = torch.zeros(1, 40, 60, dtype=torch.uint8)
    for (y, x), colour, value in (((5, 5), 200, 1), ((25, 40), 120, 1), ((5, 40), 90, 2)):
        image[0, :, y : y + 10, x : x + 10] = colour
        gt[0, y : y + 10, x : x + 10] = value
    ys, xs = torch.meshgrid(torch.arange(40.0), torch.arange(60.0), indexing="ij")
    heat = torch.exp(-((xs - 9) ** 2 + (ys - 9) ** 2) / 20)
    heat = heat + 0.8 * torch.exp(-((xs - 44) ** 2 + (ys - 29) ** 2) / 20)
    return image, gt, (heat / heat.max())[None]


def test_per_object_prompts_every_hot_component_and_unites_the_masks() -> None:
    image, gt, heat = _two_objects()
    segmenter = RegionUnderThePoint()
    state = segmenter.embed(image)
    strategy = PerObject(WeightedCentroid())
    cut = strategy.segment_objects(heat, segmenter, state)
    assert cut.valid.tolist() == [[True, True, False]]  # max_objects slots, two filled
    assert torch.equal(cut.masks, gt == 1)
    single = WeightedCentroid().segment_objects(heat, segmenter, state)
    assert single.masks.sum() == 100  # one point: one object
    _, heaviest, _ = strategy.segment(heat, segmenter, state)  # single-object data
    assert heaviest[0, 5:15, 5:15].all() and heaviest.sum() == 100


def _touching_blobs(gap: float) -> torch.Tensor:
    """(1, 40, 60) one class's heat: two equal blobs `gap` px apart on a row, joined above half
    the maximum when near (one component at `PerObject`'s threshold)."""
    ys, xs = torch.meshgrid(torch.arange(40.0), torch.arange(60.0), indexing="ij")
    heat = sum(
        torch.exp(-((xs - x) ** 2 + (ys - 20) ** 2) / 60) for x in (30 - gap / 2, 30 + gap / 2)
    )
    return (heat / heat.max())[None]


def test_split_at_peaks_gives_each_pixel_its_nearest_peak_of_the_component() -> None:
    heat = _touching_blobs(14)
    region = heat[0] >= 0.5 * heat.max()
    labels = connected_components(region[None])
    assert len(labels.unique()) == 2  # background and one component
    split = split_at_peaks(labels, heat, 4, heat.flatten(1).amax(1) * 0.5)[0].numpy()
    # independent oracle: scipy's local maxima, then each pixel to the nearest (Euclidean)
    hot = heat[0].numpy()
    peaks = np.argwhere((ndimage.maximum_filter(hot, size=9) == hot) & region.numpy())
    assert len(peaks) == 2
    ys, xs = np.nonzero(region.numpy())
    nearest = np.argmin([(ys - py) ** 2 + (xs - px) ** 2 for py, px in peaks], axis=0)
    expected = np.full(hot.shape, -1)
    expected[ys, xs] = peaks[nearest, 0] * 60 + peaks[nearest, 1]
    assert np.array_equal(split, expected)


def test_per_object_splits_a_component_with_two_peaks_and_keeps_one_object_whole() -> None:
    apart, near = _touching_blobs(14), _touching_blobs(6)
    for heat, separation, objects in ((apart, 6, 2), (apart, 0, 1), (near, 6, 1)):
        _, valid = PerObject(separation=separation).objects(heat)
        assert valid.sum() == objects, (separation, objects)
    # the separation is in px of a 48-px-high image: twice the size, twice the distance
    big = torch.nn.functional.interpolate(apart[None], scale_factor=2, mode="bilinear")[0]
    assert PerObject(separation=6).objects(big)[1].sum() == 2
    assert PerObject(separation=16).objects(apart)[1].sum() == 1
    with pytest.raises(ConfigError, match="separation"):
        PerObject(separation=-1)


def test_ground_truth_objects_prompt_each_object_at_its_innermost_pixel() -> None:
    image, gt, heat = _two_objects()
    segmenter = RegionUnderThePoint()
    cut = GroundTruthObjects().segment_objects(heat, segmenter, segmenter.embed(image), gt == 1)
    assert torch.equal(cut.masks, gt == 1)
    inside = [gt[0, int(y), int(x)] == 1 for x, y in cut.points[0][cut.valid[0]].tolist()]
    assert len(inside) == 2 and all(inside)


class RegionOnceSetUpForObjects(RegionUnderThePoint):
    """Cuts like `RegionUnderThePoint` only as `for_class_maps` returns it."""

    def for_class_maps(self) -> Segmenter:
        return RegionUnderThePoint()

    def predict(
        self, state: torch.Tensor, prompts: Prompts, heatmaps: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        raise AssertionError("cut by the segmenter as configured, not as set up for objects")


def _class_maps(
    decide: Callable[[torch.Tensor], torch.Tensor],
    truth: torch.Tensor | None = None,
    segmenter: Segmenter | None = None,
) -> tuple[BatchPipeline, torch.Tensor, ClassMapOutput]:
    """The two-object image through `run_class_maps` with `segmenter` (`RegionUnderThePoint` if
    None), the classifier finding the classes `decide` reads off its logits; the pipeline, the
    image's ground truth and the output (scored against `truth` if given, else that ground
    truth)."""
    torch.manual_seed(0)
    image, gt, _ = _two_objects()
    normalised = (image.float() / 255 - 0.45) / 0.25
    model = torchvision.models.resnet18(num_classes=2).eval()
    pipeline = BatchPipeline(segmenters=[segmenter or RegionUnderThePoint()])

    def classify(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = model(images)
        return logits, decide(logits)

    truth = gt if truth is None else truth
    return pipeline, gt, pipeline.run_class_maps(model, normalised, classify, truth)


def test_a_batch_gets_one_class_map_per_image_from_every_found_class() -> None:
    """The classifier finds both classes; each class's CAM, each strategy, one map per image."""
    pipeline, gt, output = _class_maps(lambda logits: torch.ones_like(logits, dtype=torch.bool))
    assert set(output.results) == {f"region/{s.name}" for s in pipeline.object_strategies}
    oracle = output.results["region/GroundTruthObjectPoints"]
    assert torch.equal(oracle.class_maps, gt)
    assert sorted(oracle.point_classes[0].tolist()) == [1, 1, 2]
    for result in output.results.values():
        assert result.class_maps.shape == gt.shape and result.class_maps.dtype == torch.uint8
        assert set(result.class_maps.unique().tolist()) <= {0, 1, 2}


def test_class_maps_cut_with_each_segmenter_as_set_up_for_objects() -> None:
    """`run_class_maps` cuts with `for_class_maps()` (GrabCut's object seed and rim re-cut) for
    every strategy, the oracles too: the segmenter as configured raises if it is asked to cut."""
    _, gt, output = _class_maps(
        lambda logits: torch.ones_like(logits, dtype=torch.bool),
        segmenter=RegionOnceSetUpForObjects(),
    )
    assert torch.equal(output.results["region/GroundTruthObjectPoints"].class_maps, gt)


def test_oracles_prompt_every_ground_truth_class_whatever_the_classifier_found() -> None:
    def first_only(logits: torch.Tensor) -> torch.Tensor:
        found = torch.zeros_like(logits, dtype=torch.bool)
        found[:, 0] = True
        return found

    _, gt, output = _class_maps(first_only)
    assert torch.equal(output.results["region/GroundTruthObjectPoints"].class_maps, gt)
    method = output.results["region/CamConsensus"]
    assert set(method.point_classes[0].tolist()) <= {0, 1}  # only the class found: no class 2


def test_a_batch_where_no_class_is_found_or_held_gets_background_maps() -> None:
    """Images of no class (a folder's empty labels) and a classifier that finds none: the
    method's maps are background without a point, the oracles still cut the ground truth's."""

    def none(logits: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(logits, dtype=torch.bool)

    gt = _two_objects()[1]
    for truth in (gt, torch.zeros_like(gt)):
        output = _class_maps(none, truth)[2]
        method = output.results["region/CamConsensusPerObject"]
        assert not method.class_maps.any() and not method.point_classes.any()
        assert torch.equal(output.results["region/GroundTruthObjectPoints"].class_maps, truth)
