"""The neutral image helpers: normalisation round trips, and who may import segment_anything."""

from __future__ import annotations

import subprocess
import sys

import torch

from lit_gradcam.imaging import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    denormalize_to_uint8,
    normalize_imagenet,
)

#: Modules that must load without segment_anything: the data, the CAMs, the prompt types and
#: drawing, the segmenter seam, GrabCut, and the SAM modules themselves until a SAM is built.
SAM_FREE = [
    "lit_gradcam.imaging",
    "lit_gradcam.prompt_types",
    "lit_gradcam.drawing",
    "lit_gradcam.data.dataset",
    "lit_gradcam.cam",
    "lit_gradcam.segmenters",
    "lit_gradcam.segmenters.base",
    "lit_gradcam.segmenters.grabcut",
    "lit_gradcam.segmenters.checkpoints",
    "lit_gradcam.segmenters.sam_models",
    "lit_gradcam.segmenters.sam",
]

_PROBE = """
import importlib, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
    if "segment_anything" in sys.modules:
        print(name)
        break
"""


def test_normalize_matches_the_imagenet_formula() -> None:
    images = torch.rand(2, 3, 4, 5)
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    assert torch.allclose(normalize_imagenet(images), (images - mean) / std)
    assert torch.allclose(normalize_imagenet(images[0]), (images[0] - mean) / std)


def test_denormalize_round_trips_uint8_images() -> None:
    images = torch.randint(0, 256, (4, 3, 48, 64), dtype=torch.uint8)
    restored = denormalize_to_uint8(normalize_imagenet(images.float() / 255))
    assert restored.dtype == torch.uint8
    assert torch.equal(restored, images)
    assert torch.equal(denormalize_to_uint8(normalize_imagenet(images[0].float() / 255)), images[0])


def test_segment_anything_is_imported_only_to_build_a_sam() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *SAM_FREE], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "", f"importing {done.stdout.strip()} imports segment_anything"
