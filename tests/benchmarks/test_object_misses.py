"""benchmarks/object_misses.py sorts each ground-truth object by where its class's prompts went,
checked on hand-drawn class maps whose answers are known by construction, and draws the images
it missed as the class-map grid."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from helpers.benchmark_scripts import load_benchmark
from PIL import Image

from lit_gradcam.class_map_drawing import class_map_grid
from lit_gradcam.evaluation.semantic_metrics import ObjectHitRate
from lit_gradcam.method.objects import ClassMapOutput, ClassMapResult
from lit_gradcam.prompt_types import Prompts

object_misses = load_benchmark("object_misses")


def _scene() -> np.ndarray:
    """48x64: a ring of class 1 (centre (15, 20), hole radius 5), two squares of class 2, a
    3-pixel sliver of class 2, a disc of class 3, and an ignored rim around the disc."""
    scene = np.zeros((48, 64), np.uint8)
    cv2.circle(scene, (15, 20), 9, 1, thickness=-1)
    cv2.circle(scene, (15, 20), 5, 0, thickness=-1)
    scene[5:12, 40:47] = 2
    scene[30:37, 40:47] = 2
    scene[45, 60:63] = 2
    cv2.circle(scene, (55, 40), 5, 255, thickness=-1)
    cv2.circle(scene, (55, 40), 4, 3, thickness=-1)
    return scene


def test_hits_holes_and_near_misses_are_told_apart() -> None:
    points = np.array([[15.0, 20.0], [43.2, 8.4], [47.6, 33.0], [0.0, 0.0]])
    classes = np.array([1, 2, 2, 0])  # the last is padding: it counts for nothing
    found = np.array([True, True, False])
    outcomes = object_misses.object_outcomes(_scene(), points, classes, found)
    # the ring's prompt sits in its hole, 5 px from it; the first square is hit; (47.6, 33)
    # rounds to column 48, 2 px right of the second square; the sliver is an object too, far
    # from both; class 3 was not found
    assert outcomes == [(1, "far"), (2, "hit"), (2, "near"), (2, "far"), (3, "class not found")]


def test_a_found_class_without_prompts_and_a_point_on_the_ignored_rim() -> None:
    points = np.array([[55.0, 35.0]])  # on the rim (255) just above the disc
    outcomes = object_misses.object_outcomes(
        _scene(), points, np.array([3]), np.array([True, True, True])
    )
    assert outcomes == [(1, "no prompt"), *[(2, "no prompt")] * 3, (3, "near")]


def test_its_objects_and_hits_are_the_callbacks_object_hit_rate() -> None:
    scene = _scene()
    points = np.array([[15.0, 11.5], [43.0, 8.0], [61.0, 45.0], [55.0, 40.0], [20.0, 20.0]])
    classes = np.array([1, 2, 2, 3, 3])
    outcomes = object_misses.object_outcomes(scene, points, classes, np.ones(3, dtype=bool))
    metric = ObjectHitRate(num_classes=3)
    metric.update(
        torch.from_numpy(scene)[None], torch.from_numpy(points)[None].float(),
        torch.from_numpy(classes)[None],
    )  # fmt: skip
    hits = sum(outcome == "hit" for _, outcome in outcomes)
    assert (hits, len(outcomes)) == (4, 5)  # the ring, a square, the sliver, the disc
    assert metric.compute().item() == hits / len(outcomes)


def test_points_beyond_the_image_are_clamped_onto_its_edge() -> None:
    scene = np.zeros((10, 10), np.uint8)
    scene[:, 8:] = 1
    outcomes = object_misses.object_outcomes(
        scene, np.array([[12.0, 4.0]]), np.array([1]), np.array([True])
    )
    assert outcomes == [(1, "hit")]


def _batch_output() -> ClassMapOutput:
    """Three 8x10 images with two (segmenter, strategy) results."""
    generator = torch.Generator().manual_seed(0)
    maps = torch.randint(0, 3, (3, 8, 10), generator=generator, dtype=torch.uint8)
    results = {
        key: ClassMapResult(
            (maps + shift) % 3,
            Prompts(torch.rand(3, 2, 2, generator=generator) * 7, torch.ones(3, 2).long()),
            torch.tensor([[1, 2], [2, 0], [1, 1]]),
        )
        for shift, key in enumerate(("grabcut/a", "grabcut/b"))
    }
    images = torch.randint(0, 256, (3, 3, 8, 10), generator=generator, dtype=torch.uint8)
    return ClassMapOutput(
        images, torch.zeros(3, 2), torch.ones(3, 2, dtype=torch.bool), torch.rand(3, 8, 10),
        results, maps,
    )  # fmt: skip


def test_a_missed_image_keeps_its_own_rows_and_one_result() -> None:
    output = _batch_output()
    one = object_misses._one_image(output, "grabcut/b", 1)
    assert list(one.results) == ["grabcut/b"]
    result, source = one.results["grabcut/b"], output.results["grabcut/b"]
    assert torch.equal(one.images_uint8, output.images_uint8[1:2])
    assert torch.equal(one.gt_maps, output.gt_maps[1:2])
    assert torch.equal(result.class_maps, source.class_maps[1:2])
    assert torch.equal(result.prompts.points, source.prompts.points[1:2])
    assert torch.equal(result.point_classes, source.point_classes[1:2])


def test_the_figure_file_holds_the_class_map_grid(tmp_path: Path) -> None:
    output = _batch_output()
    missed = ClassMapOutput.cat([object_misses._one_image(output, "grabcut/a", i) for i in (0, 2)])
    path = tmp_path / "figures" / "misses.png"
    object_misses.save_figure(missed, ("square", "ring"), path)
    result = missed.results["grabcut/a"]
    expected = class_map_grid(
        missed.images_uint8, missed.heatmaps, result.prompts, result.class_maps, missed.gt_maps,
        ("square", "ring"),
    )  # fmt: skip
    written = torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1)
    assert torch.equal(written, expected)
