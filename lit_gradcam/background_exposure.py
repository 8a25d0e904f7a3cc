"""Background exposure: images with no shape in them, shown to the classifier as it trains.

A classifier that has only ever seen images holding a shape has no reason to score a photo
lower than a real shape, so the no-shape flag (`ShapeClassifier.no_shape`) misses such images.
Outlier exposure (Hendrycks et al., 2019) adds images of none of the classes to training. Here
they come from this package's own background code, never from a dataset's images or masks: half
are crops of the shapes generator's `natural` photos, half are `SceneBackgrounds` (other photos,
dead leaves, noise, gradients, flat colours). The loss ranks every shape image's shape score above
every background's in the batch, on the very score the flag thresholds.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from lit_gradcam.data.backgrounds import NaturalBackgrounds
from lit_gradcam.imaging import image_tensor, normalize_imagenet
from lit_gradcam.sam_training.scene_backgrounds import SceneBackgrounds


class BackgroundImages:
    """Draws batches of shape-free, ImageNet-normalised images.

    Args:
        seed: fixes the sequence of images (each DDP rank passes its own).
    """

    def __init__(self, seed: int) -> None:
        self.photos = NaturalBackgrounds()
        self.scenes = SceneBackgrounds()
        self.rng = np.random.default_rng(seed)
        self.generator = torch.Generator().manual_seed(seed)

    def photo_crops(self, count: int, size: tuple[int, int]) -> Tensor:
        """`count` crops (count, 3, *size) of the shapes generator's `natural` photos."""
        crops = torch.stack(
            [
                image_tensor(torch.from_numpy(self.photos.sample(self.rng).copy()))
                for _ in range(count)
            ]
        )
        if tuple(crops.shape[-2:]) != tuple(size):
            crops = F.interpolate(crops, size=size, mode="bilinear", align_corners=False)
        return crops

    def draw(self, count: int, size: tuple[int, int], device: torch.device) -> Tensor:
        """`count` backgrounds (count, 3, *size) on `device`: the first half photo crops, the
        rest scenes."""
        photos = (count + 1) // 2
        parts = [self.photo_crops(photos, size)]
        if count > photos:
            scenes = self.scenes.sample(count - photos, *size, self.generator)
            parts.append(normalize_imagenet(scenes / 255))
        return torch.cat(parts).to(device)


def ranking_loss(shape_scores: Tensor, background_scores: Tensor, temperature: float) -> Tensor:
    """Mean over all (shape image, background) pairs of softplus((background - shape) / T):
    small once every shape image scores well above every background, with no margin to tune."""
    gaps = background_scores[None, :] - shape_scores[:, None]
    return F.softplus(gaps / temperature).mean()
