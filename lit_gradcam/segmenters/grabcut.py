"""`GrabCutSegmenter`: OpenCV's GrabCut seeded from the prompts, a baseline that needs no weights.

GrabCut learns a colour model of foreground and background from an initial labelling and cuts
the image with a graph cut, refining both for a few iterations. The prompts give that labelling:

- everything starts as probable background (the image border included);
- a box makes its inside probable foreground;
- background points are definite-background discs, foreground points definite-foreground discs.

A few seed pixels make a colour model too narrow for a translucent shape, whose colour changes
with the background behind it: GrabCut then returns the seeds alone or half the shape. So each
image is also cut a second time with a probable-foreground disc of `prior_radius` around every
foreground point, and the mask whose boundary has the stronger colour step is kept: a cut along
the object's edge crosses a strong step everywhere, a cut through its inside or the background
does not. A foreground seed is definite, so a seed that landed in a ring's hole or a crescent's
concavity keeps that background in both cuts, and GrabCut fills the outline around it. The
winner can therefore be cut once more from its rim (`rim_depth`), with no definite seed: its
pixels near its border start as probable foreground and all others as probable background, so
that the foreground's colour model is learned from the rim, and a region inside that looks like
the outside (the hole) goes back to background. The winner's edge pixels are then re-decided by
their coverage (`refine_edges`): a graph cut puts a partly covered pixel wholly on one side, and
on a small anti-aliased shape that one ring of pixels costs several points of IoU. The boundary
step of the final mask, scaled to [0, 1], is the returned score.

A cut can also take the background: from a small seed, or a prior disc over several objects, the
colour models mix object and background, and GrabCut may return the complement of the objects,
whose boundary steps are the objects' own. A cut that holds more than half of the image's border,
which starts as background, is therefore never kept (`covers_border`); when every cut does, the
seeds are the mask, with score 0.

GrabCut's time grows with the pixel count, so an image whose longer side exceeds `max_side` (a
phone photo in `predict`) is cut at that side, with its prompts scaled alike, and the mask is
resized back to the image's own size.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import Tensor

from lit_gradcam.data.backgrounds import HEIGHT, dataset_scale
from lit_gradcam.errors import ConfigError
from lit_gradcam.prompt_types import BACKGROUND, FOREGROUND, Prompts
from lit_gradcam.segmenters.base import Segmenter

#: GrabCut fits 5-component colour mixtures with k-means: each side needs at least 5 pixels.
_MIN_SAMPLES = 5
#: Largest RGB distance between two pixels, to scale the boundary step to [0, 1].
_MAX_STEP = float(np.sqrt(3) * 255)
_FOREGROUND_CLASSES = (cv2.GC_FGD, cv2.GC_PR_FGD)
#: RGB distance below which local foreground and background colours are too alike to measure
#: an edge pixel's coverage between them.
_MIN_EDGE_CONTRAST = 10.0
#: Largest distance of an edge pixel's colour from the background-foreground line, as a share of
#: the line's length, for it to count as a mix of the two.
_MAX_OFF_LINE = 0.2


@dataclass
class GrabCutState:
    """The batch's images as contiguous HWC uint8 RGB arrays at the size they are cut at, the
    size (height, width) they were given at, and the device they came from."""

    images: list[np.ndarray]
    size: tuple[int, int]
    device: torch.device

    @property
    def scale(self) -> float:
        """The cut's size over the given size (1 when the images were not shrunk)."""
        return self.images[0].shape[1] / self.size[1]


class GrabCutSegmenter(Segmenter):
    """OpenCV GrabCut initialised from point and box prompts (see the module docstring).

    iterations: GrabCut iterations per cut.
    point_radius: radius in pixels of the definite discs drawn at the prompt points.
    object_point_radius: the same for prompts placed per object in class maps (several objects
        per image), which sit nearer the objects' rims and concavities, where a wider disc
        takes in background colour (chosen on validation splits: docs/results.md).
    rim_depth: re-cut the winning mask from its rim, the pixels within this depth of its border
        (module docstring); 0 = no re-cut (the default for single objects).
    object_rim_depth: the same for class maps, whose per-object prompts land in holes and
        concavities more often (chosen on validation splits: docs/results.md).
    prior_radius: radius in pixels of the probable-foreground disc of the second cut, about half
        the expected object size (7 suits the 13-19 px shapes of the 48x64 dataset); 0 = one
        cut from the seeds alone.
    edge_radius: radius in pixels of the window whose inside and outside colours re-decide each
        pixel along the cut by its coverage (`refine_edges`, for anti-aliased edges); it must
        reach past the edge pixels, so 2 or more; 0 = GrabCut's own edges.
    The radii and depths are given for the dataset's images (shorter side `HEIGHT`); other
    images scale them (x5 on a 240x320 image), so that `predict` on photos of any size cuts
    alike.
    name: label in metric keys.
    max_side: longest image side GrabCut runs at; larger images are cut shrunk to it and their
        masks resized back (None: always at full size).

    Deterministic: OpenCV's RNG (GrabCut's k-means initialisation) is reseeded before each cut.
    Images without a foreground prompt, or too small to hold both colour models, get the initial
    labelling's foreground (possibly empty) and score 0.
    """

    def __init__(
        self,
        iterations: int = 5,
        point_radius: int = 3,
        object_point_radius: int = 1,
        rim_depth: float = 0.0,
        object_rim_depth: float = 3.5,
        prior_radius: int = 7,
        name: str = "grabcut",
        edge_radius: int = 2,
        max_side: int | None = 512,
    ) -> None:
        radii = (point_radius, object_point_radius, prior_radius, edge_radius)
        if iterations < 1 or min(*radii, rim_depth, object_rim_depth) < 0:
            raise ConfigError(
                "iterations must be >= 1 and radii and depths >= 0, got "
                f"{iterations=}, {point_radius=}, {object_point_radius=}, {rim_depth=}, "
                f"{object_rim_depth=}, {prior_radius=}, {edge_radius=}"
            )
        if max_side is not None and max_side < HEIGHT:
            raise ConfigError(f"max_side must be at least {HEIGHT} or null, got {max_side}")
        self.max_side = max_side
        self.iterations = iterations
        self.point_radius = point_radius
        self.object_point_radius = object_point_radius
        self.rim_depth = rim_depth
        self.object_rim_depth = object_rim_depth
        self.prior_radius = prior_radius
        self.name = name
        self.edge_radius = edge_radius

    def for_class_maps(self) -> GrabCutSegmenter:
        """A copy whose point discs have `object_point_radius` and whose rim re-cut reaches
        `object_rim_depth`."""
        objects = copy.copy(self)
        objects.point_radius = self.object_point_radius
        objects.rim_depth = self.object_rim_depth
        return objects

    def embed(self, images: Tensor) -> GrabCutState:
        """Keep uint8 RGB images (B, 3, H, W) as the numpy arrays OpenCV reads."""
        if images.ndim != 4 or images.shape[1] != 3 or images.dtype != torch.uint8:
            raise ValueError(
                f"images must be uint8 (B, 3, H, W), got {images.dtype} {tuple(images.shape)}"
            )
        size = (images.shape[2], images.shape[3])
        arrays = [np.ascontiguousarray(image) for image in images.permute(0, 2, 3, 1).cpu().numpy()]
        if self.max_side is not None and max(size) > self.max_side:
            scale = self.max_side / max(size)
            small = (max(1, round(size[1] * scale)), max(1, round(size[0] * scale)))  # (w, h)
            arrays = [cv2.resize(image, small, interpolation=cv2.INTER_AREA) for image in arrays]
        return GrabCutState(arrays, size, images.device)

    def select(self, state: GrabCutState, index: Tensor) -> GrabCutState:
        return GrabCutState([state.images[i] for i in index.tolist()], state.size, state.device)

    def predict(
        self, state: GrabCutState, prompts: Prompts, heatmaps: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Masks (B, H, W) bool and boundary-step scores (B,) in [0, 1]; one cut per image, so
        there is no candidate for `heatmaps` to choose between."""
        if prompts.batch_size != len(state.images):
            raise ValueError(f"{prompts.batch_size} prompt sets for {len(state.images)} images")
        prompts.validate(*state.size)
        prompts = _scaled(prompts.to("cpu"), state.scale, state.images[0].shape[:2])
        masks, scores = [], []
        for index, image in enumerate(state.images):
            mask, score = self._segment(image, prompts.select(index))
            if mask.shape != state.size:  # cut shrunk: back to the given size
                full = cv2.resize(
                    mask.astype(np.float32), state.size[::-1], interpolation=cv2.INTER_LINEAR
                )
                mask = full >= 0.5
            masks.append(mask)
            scores.append(score)
        return (
            torch.from_numpy(np.stack(masks)).to(state.device),
            torch.tensor(scores, dtype=torch.float32, device=state.device),
        )

    def _segment(self, image: np.ndarray, prompts: Prompts) -> tuple[np.ndarray, float]:
        """Best mask over the candidate initialisations of one image, and its score."""
        points = prompts.points[0].round().long().tolist()
        labels = prompts.labels[0].tolist()
        box = None if prompts.boxes is None else prompts.boxes[0].round().long().tolist()
        foreground = [p for p, label in zip(points, labels, strict=True) if label == FOREGROUND]
        background = [p for p, label in zip(points, labels, strict=True) if label == BACKGROUND]
        scale = dataset_scale(*image.shape[:2])
        point_radius = max(1, round(self.point_radius * scale)) if self.point_radius else 0
        priors = [0]
        if self.prior_radius > 0 and foreground:
            priors.append(max(1, round(self.prior_radius * scale)))
        edge_radius = max(1, round(self.edge_radius * scale)) if self.edge_radius else 0
        best, best_score = None, -1.0
        for prior in priors:
            init = self._initial_mask(
                image.shape[:2], foreground, background, box, prior, point_radius
            )
            mask, score = self._cut(image, init)
            if score > best_score and not covers_border(mask):
                best, best_score = mask, score
        if best is None:  # every cut took the background: the seeds are all that is known
            best, best_score = init == cv2.GC_FGD, 0.0  # every init draws the same seeds
        if self.rim_depth and best_score > 0:
            rim, rim_score = self._cut(image, _rim_labels(best, self.rim_depth * scale))
            if rim_score > 0 and rim.sum() >= _MIN_SAMPLES and not covers_border(rim):
                best, best_score = rim, rim_score  # else it could not cut, or took the background
        if edge_radius and best_score > 0:
            best = refine_edges(image, best, edge_radius)
            best_score = boundary_step(image, best)
        return best, best_score

    def _initial_mask(
        self,
        size: tuple[int, int],
        foreground: list[list[int]],
        background: list[list[int]],
        box: list[int] | None,
        prior: int,
        point_radius: int,
    ) -> np.ndarray:
        """GrabCut labels: probable background, box and prior discs probable foreground, then
        the border probable background and the point discs definite (foreground drawn last)."""
        mask = np.full(size, cv2.GC_PR_BGD, dtype=np.uint8)
        if box is not None:
            x0, y0, x1, y1 = np.clip(box, 0, None)
            mask[y0 : y1 + 1, x0 : x1 + 1] = cv2.GC_PR_FGD
        for x, y in foreground if prior else []:
            cv2.circle(mask, (x, y), prior, cv2.GC_PR_FGD, thickness=-1)
        mask[[0, -1], :] = cv2.GC_PR_BGD
        mask[:, [0, -1]] = cv2.GC_PR_BGD
        for points, label in ((background, cv2.GC_BGD), (foreground, cv2.GC_FGD)):
            for x, y in points:
                cv2.circle(mask, (x, y), point_radius, label, thickness=-1)
        return mask

    def _cut(self, image: np.ndarray, init: np.ndarray) -> tuple[np.ndarray, float]:
        """GrabCut from `init`; the initial foreground with score 0 when it cannot run."""
        is_foreground = np.isin(init, _FOREGROUND_CLASSES)
        n_foreground = int(is_foreground.sum())
        if min(n_foreground, init.size - n_foreground) < _MIN_SAMPLES:
            return is_foreground, 0.0
        mask = init.copy()
        cv2.setRNGSeed(0)
        cv2.grabCut(
            image,
            mask,
            None,
            np.zeros((1, 65), np.float64),
            np.zeros((1, 65), np.float64),
            self.iterations,
            cv2.GC_INIT_WITH_MASK,
        )
        result = np.isin(mask, _FOREGROUND_CLASSES)
        return result, boundary_step(image, result)


def covers_border(mask: np.ndarray) -> bool:
    """Whether `mask` holds more than half of the image's border pixels: the background, which
    the border starts as, rather than an object. A cut whose colour models mix the object with
    the background (a small seed, a prior disc over several objects) can return the complement
    of the objects, and the boundary step cannot tell a mask from its complement."""
    border = np.concatenate([mask[0], mask[-1], mask[1:-1, 0], mask[1:-1, -1]])
    return bool(border.mean() > 0.5)


def _rim_labels(mask: np.ndarray, depth: float) -> np.ndarray:
    """GrabCut labels for a re-cut of `mask` from its rim: probable foreground where a pixel of
    the mask lies within `depth` of a pixel outside it (the image's edge counting as outside),
    probable background everywhere else."""
    inside = cv2.distanceTransform(np.pad(mask.astype(np.uint8), 1), cv2.DIST_L2, 5)[1:-1, 1:-1]
    return np.where(mask & (inside <= depth), cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)


def _scaled(prompts: Prompts, scale: float, size: tuple[int, int]) -> Prompts:
    """`prompts` in the coordinates of the image shrunk by `scale` to `size` (height, width)."""
    if scale == 1:
        return prompts
    limit = torch.tensor([size[1] - 1, size[0] - 1], dtype=prompts.points.dtype)
    points = ((prompts.points + 0.5) * scale - 0.5).clamp(min=0).minimum(limit)
    boxes = None
    if prompts.boxes is not None:
        boxes = ((prompts.boxes + 0.5) * scale - 0.5).clamp(min=0).minimum(limit.repeat(2))
    return Prompts(points, prompts.labels, boxes)


def refine_edges(image: np.ndarray, mask: np.ndarray, radius: int) -> np.ndarray:
    """Re-decide the pixels on either side of the mask's boundary by their estimated coverage.

    A graph cut puts a partly covered (anti-aliased) edge pixel wholly on one side, and which
    side depends on small colour differences, so it often shifts a whole ring of them. Here an
    edge pixel (a 4-neighbour across the boundary) is compared with the local foreground and
    background colours: the means of the pixels inside and outside the cut, within `radius`, that
    are not edge pixels themselves. Its coverage is its position on the line between the two; it
    is foreground where that is at least one half, as a mask drawn from coverage would have it.
    A pixel keeps the cut's label where either colour is missing nearby, where the two are too
    alike, or where its colour lies far off that line (texture, not a mix of the two).
    """
    cross = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    inner = cv2.erode(mask.astype(np.uint8), cross).astype(bool)
    outer = cv2.erode((~mask).astype(np.uint8), cross).astype(bool)
    edge = ~inner & ~outer
    if not edge.any():
        return mask
    pixels = image.astype(np.float32)
    foreground, has_foreground = _local_mean(pixels, inner, radius)
    background, has_background = _local_mean(pixels, outer, radius)
    line = foreground - background
    contrast = np.linalg.norm(line, axis=-1)
    offset = pixels - background
    coverage = (offset * line).sum(-1) / np.maximum(contrast, 1.0) ** 2
    off_line = np.linalg.norm(offset - coverage[..., None] * line, axis=-1)
    decide = (
        edge
        & has_foreground
        & has_background
        & (contrast >= _MIN_EDGE_CONTRAST)
        & (off_line <= _MAX_OFF_LINE * contrast)
    )
    refined = mask.copy()
    refined[decide] = coverage[decide] >= 0.5
    return refined


def _local_mean(
    pixels: np.ndarray, region: np.ndarray, radius: int
) -> tuple[np.ndarray, np.ndarray]:
    """Mean colour (H, W, 3) of `region`'s pixels in the square of `radius` around each pixel,
    and where that square holds any."""
    size = (2 * radius + 1, 2 * radius + 1)
    weight = cv2.boxFilter(region.astype(np.float32), -1, size, normalize=False)
    total = cv2.boxFilter(pixels * region[..., None], -1, size, normalize=False)
    return total / np.maximum(weight, 1.0)[..., None], weight > 0


def boundary_step(image: np.ndarray, mask: np.ndarray) -> float:
    """Mean RGB distance between 4-neighbour pixel pairs that `mask` separates, in [0, 1]
    (0 when the mask has no boundary inside the image)."""
    pixels = image.astype(np.float32)
    total, count = 0.0, 0
    for axis in (0, 1):
        crossing = np.diff(mask, axis=axis)
        step = np.linalg.norm(np.diff(pixels, axis=axis), axis=-1)
        total += float(step[crossing].sum())
        count += int(crossing.sum())
    return total / count / _MAX_STEP if count else 0.0
