"""benchmarks/object_misses.py sorts each ground-truth object by where its class's prompts went,
checked on hand-drawn class maps whose answers are known by construction."""

from __future__ import annotations

import cv2
import numpy as np
from helpers.benchmark_scripts import load_benchmark

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
    # rounds to column 48, 2 px right of the second square; the sliver is no object; class 3
    # was not found
    assert outcomes == [(1, "far"), (2, "hit"), (2, "near"), (3, "class not found")]


def test_a_found_class_without_prompts_and_a_point_on_the_ignored_rim() -> None:
    points = np.array([[55.0, 35.0]])  # on the rim (255) just above the disc
    outcomes = object_misses.object_outcomes(
        _scene(), points, np.array([3]), np.array([True, True, True])
    )
    assert outcomes == [(1, "no prompt"), (2, "no prompt"), (2, "no prompt"), (3, "near")]


def test_points_beyond_the_image_are_clamped_onto_its_edge() -> None:
    scene = np.zeros((10, 10), np.uint8)
    scene[:, 8:] = 1
    outcomes = object_misses.object_outcomes(
        scene, np.array([[12.0, 4.0]]), np.array([1]), np.array([True])
    )
    assert outcomes == [(1, "hit")]
