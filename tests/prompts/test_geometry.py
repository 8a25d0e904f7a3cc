"""The shared pixel-grid helpers: peaks, centroids, snapping, components, boxes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from lit_gradcam.prompt_types import Prompts
from lit_gradcam.prompts.geometry import (
    connected_components,
    image_centre,
    lookup,
    mask_boxes,
    nms_peaks,
    ranked_components,
    snap_to_mask,
    weighted_centroid,
)


def test_image_centre_rounds_half_up() -> None:
    assert image_centre(2, 48, 64, torch.device("cpu")).tolist() == [[32.0, 24.0]] * 2
    assert image_centre(1, 5, 7, torch.device("cpu")).tolist() == [[3.0, 2.0]]


def test_nms_peaks_are_spaced_and_ordered() -> None:
    scores = torch.zeros(1, 10, 20)
    scores[0, 2, 3] = 1.0
    scores[0, 2, 4] = 0.9  # next to the first: suppressed at distance 3
    scores[0, 7, 15] = 0.8
    points, valid = nms_peaks(scores, 2, min_distance=3)
    assert points.tolist() == [[[3.0, 2.0], [15.0, 7.0]]]
    assert valid.all()
    plain, _ = nms_peaks(scores, 2)
    assert plain.tolist() == [[[3.0, 2.0], [4.0, 2.0]]]


def test_nms_peaks_flat_map_prefers_centre_and_reports_exhaustion() -> None:
    points, valid = nms_peaks(torch.full((1, 5, 7), 0.5), 3, min_distance=10)
    assert points[0, 0].tolist() == [3.0, 2.0]
    assert valid.tolist() == [[True, False, False]]
    _, valid = nms_peaks(torch.full((1, 5, 7), -torch.inf), 1)
    assert not valid.any()


def test_weighted_centroid_and_zero_fallback() -> None:
    weights = torch.zeros(2, 6, 8)
    weights[0, 1, 1] = 1.0
    weights[0, 1, 5] = 3.0
    assert weighted_centroid(weights).tolist() == [[4.0, 1.0], [4.0, 3.0]]


def test_weighted_centroid_of_an_edge_column_or_row_stays_in_the_image() -> None:
    # weights on the last column (row) only: their float32 centre of mass rounds past it
    generator = torch.Generator().manual_seed(4)
    column = torch.zeros(1, 48, 64)
    column[0, :, 63] = torch.rand(48, generator=generator)
    row = column.transpose(1, 2).contiguous()
    (x, _), (_, y) = weighted_centroid(column)[0].tolist(), weighted_centroid(row)[0].tolist()
    assert 62.99 < x <= 63 and 62.99 < y <= 63
    Prompts(weighted_centroid(column)[:, None], torch.ones(1, 1, dtype=torch.long)).validate(48, 64)


def test_snap_to_mask_keeps_inside_points_and_moves_outside_ones() -> None:
    masks = torch.zeros(3, 5, 5, dtype=torch.bool)
    masks[0, 2, 2] = masks[1, 0, 4] = True
    points = torch.tensor([[2.2, 1.8], [0.0, 0.0], [1.0, 1.0]])
    snapped = snap_to_mask(points, masks)
    assert snapped.flatten().tolist() == pytest.approx([2.2, 1.8, 4.0, 0.0, 1.0, 1.0])


def test_lookup_rounds_and_clamps() -> None:
    masks = torch.zeros(1, 4, 4, dtype=torch.bool)
    masks[0, 0, 3] = True
    points = torch.tensor([[[2.6, 0.4], [9.0, -5.0], [2.4, 0.0]]])
    assert lookup(masks, points).tolist() == [[True, True, False]]


@pytest.mark.parametrize("connectivity", [4, 8])
def test_connected_components_match_scipy(connectivity: int) -> None:
    generator = torch.Generator().manual_seed(0)
    masks = torch.rand(4, 23, 31, generator=generator) > 0.55
    labels = connected_components(masks, connectivity)
    structure = ndimage.generate_binary_structure(2, 1 if connectivity == 4 else 2)
    for mask, ours in zip(masks.numpy(), labels.numpy(), strict=True):
        theirs, count = ndimage.label(mask, structure)
        assert ((ours >= 0) == mask).all()
        pairs = set(zip(ours[mask].tolist(), theirs[mask].tolist(), strict=True))
        assert len(pairs) == count == len(np.unique(ours[mask]))


def test_connected_components_long_serpentine_is_one_component() -> None:
    mask = torch.zeros(1, 21, 21, dtype=torch.bool)
    mask[0, ::2] = True  # full rows 0, 2, ..., 20 joined alternately at the right and left end
    mask[0, 1::4, -1] = True
    mask[0, 3::4, 0] = True
    labels = connected_components(mask, 4)
    assert labels[mask].unique().tolist() == [0]
    assert (labels[~mask] == -1).all()


def test_ranked_components_and_boxes() -> None:
    masks = torch.zeros(1, 8, 12, dtype=torch.bool)
    masks[0, 1:3, 1:3] = True  # 4 px
    masks[0, 4:7, 6:11] = True  # 15 px
    labels = connected_components(masks)
    components, valid = ranked_components(labels, torch.ones(1, 8, 12), 3)
    assert valid.tolist() == [[True, True, False]]
    assert components[0, 0].sum() == 15 and components[0, 1].sum() == 4
    assert not components[0, 2].any()
    assert mask_boxes(components[:, 0]).tolist() == [[6.0, 4.0, 10.0, 6.0]]
    assert mask_boxes(torch.zeros(1, 8, 12, dtype=torch.bool)).tolist() == [[0, 0, 11, 7]]
