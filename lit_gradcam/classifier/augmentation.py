"""`TrainAugmentation`: label-preserving jitter of a whole training batch, on its own device.

A classifier trained from scratch on a few thousand images memorises them, and one trained
on a single generator learns its quirks (hard edges, one size range, one palette). Each
transform here changes something that does not change the class, so the network has to look
at the shape's outline instead:

- geometry: mirror, shift, zoom and a small tilt (at most 15 degrees by construction: a
  square turned by 45 degrees is a diamond);
- photometry: brightness, contrast, saturation, channel order (shapes come in any colour);
- rendering: blur and noise, so hard-edged training shapes also teach anti-aliased ones.

It works on ImageNet-normalised (B, 3, H, W) batches in one `grid_sample` and a few
element-wise ops, so it costs little next to a ResNet step and needs no loader workers. It
always computes in float32, also inside a mixed-precision training step. A `strength` below 1
scales every transform but the mirror towards off: a from-scratch network learns the shapes
soonest on plain images, and the jitter can be ramped in as it learns (see `ShapeClassifier`).
Only images are transformed: the classifier never sees masks.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from lit_gradcam.data.shape_bank import SQUARE_DIAMOND_DEGREES
from lit_gradcam.errors import ConfigError
from lit_gradcam.imaging import IMAGENET_MEAN, IMAGENET_STD

#: Sigma (px) of the blur that `blur` blends in: about an anti-aliased edge's width.
BLUR_SIGMA = 0.8
#: ITU-R BT.601 luma weights, for saturation jitter.
_LUMA = (0.299, 0.587, 0.114)


class TrainAugmentation:
    """Random, label-preserving transforms of a normalised training batch.

    Args:
        hflip: probability of a left-right mirror (also keeps heatmaps left-right symmetric).
        translate: largest shift, as a fraction of the image's width and height.
        scale: (min, max) zoom; below 1 the shape gets smaller.
        rotate: largest tilt in degrees (at most `SQUARE_DIAMOND_DEGREES`).
        brightness, contrast, saturation: largest relative change of each (0 = off).
        channel_shuffle: probability of permuting the RGB channels.
        blur: probability of softening the image: a blend, weighted by a draw from
            `blur_amount`, of the image and its Gaussian blur of sigma `BLUR_SIGMA` px.
        blur_amount: (min, max) weight of the blurred image in that blend.
        noise: largest standard deviation of added Gaussian pixel noise (0-1 scale).
    """

    def __init__(
        self,
        hflip: float = 0.5,
        translate: float = 0.1,
        scale: tuple[float, float] = (0.8, 1.2),
        rotate: float = 10.0,
        brightness: float = 0.2,
        contrast: float = 0.2,
        saturation: float = 0.3,
        channel_shuffle: float = 0.5,
        blur: float = 0.3,
        blur_amount: tuple[float, float] = (0.3, 1.0),
        noise: float = 0.02,
    ) -> None:
        if not 0 <= rotate <= SQUARE_DIAMOND_DEGREES:
            raise ConfigError(
                f"rotate must be in [0, {SQUARE_DIAMOND_DEGREES}] degrees (a square tilted by 45 "
                f"is a diamond), got {rotate}"
            )
        if not 0 < scale[0] <= scale[1]:
            raise ConfigError(f"scale must be (min, max) with 0 < min <= max, got {scale}")
        for name, p in (("hflip", hflip), ("channel_shuffle", channel_shuffle), ("blur", blur)):
            if not 0 <= p <= 1:
                raise ConfigError(f"{name} is a probability in [0, 1], got {p}")
        self.hflip, self.translate, self.scale, self.rotate = hflip, translate, scale, rotate
        self.brightness, self.contrast, self.saturation = brightness, contrast, saturation
        self.channel_shuffle, self.blur, self.blur_amount = channel_shuffle, blur, blur_amount
        self.noise = noise

    def __call__(self, images: Tensor, strength: float = 1.0) -> Tensor:
        """Augment a normalised (B, 3, H, W) batch; returns a new normalised float32 batch.
        `strength` in [0, 1] scales every transform but the mirror (0: mirror only)."""
        if not 0 <= strength <= 1:
            raise ValueError(f"strength must be in [0, 1], got {strength}")
        with torch.autocast(images.device.type, enabled=False):
            return self.scaled(strength)._augment(images.float())

    def scaled(self, strength: float) -> TrainAugmentation:
        """These settings with every transform but the mirror scaled by `strength`."""
        if strength == 1:
            return self
        low, high = self.scale
        return TrainAugmentation(
            hflip=self.hflip,
            translate=self.translate * strength,
            scale=(1 + (low - 1) * strength, 1 + (high - 1) * strength),
            rotate=self.rotate * strength,
            brightness=self.brightness * strength,
            contrast=self.contrast * strength,
            saturation=self.saturation * strength,
            channel_shuffle=self.channel_shuffle * strength,
            blur=self.blur * strength,
            blur_amount=self.blur_amount,
            noise=self.noise * strength,
        )

    def _augment(self, images: Tensor) -> Tensor:
        mean = images.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = images.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
        pixels = self._geometry(images * std + mean)
        pixels = self._photometry(pixels)
        pixels = self._rendering(pixels)
        return (pixels.clamp(0, 1) - mean) / std

    def _uniform(self, images: Tensor, low: float, high: float) -> Tensor:
        return torch.empty(images.shape[0], device=images.device).uniform_(low, high)

    def _geometry(self, pixels: Tensor) -> Tensor:
        """Mirror, shift, zoom and tilt in one affine resampling (reflected at the border)."""
        b = pixels.shape[0]
        angle = self._uniform(pixels, -self.rotate, self.rotate) * (math.pi / 180)
        zoom = self._uniform(pixels, *self.scale)
        mirror = torch.where(torch.rand(b, device=pixels.device) < self.hflip, -1.0, 1.0)
        # grid_sample maps output coordinates to input ones: the inverse of the wanted motion
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        theta = torch.zeros(b, 2, 3, device=pixels.device)
        theta[:, 0, 0], theta[:, 0, 1] = cos * mirror, -sin
        theta[:, 1, 0], theta[:, 1, 1] = sin * mirror, cos
        theta[:, :, 2] = torch.empty(b, 2, device=pixels.device).uniform_(
            -2 * self.translate, 2 * self.translate
        )
        grid = F.affine_grid(theta, list(pixels.shape), align_corners=False)
        return F.grid_sample(pixels, grid, padding_mode="reflection", align_corners=False)

    def _photometry(self, pixels: Tensor) -> Tensor:
        b = pixels.shape[0]
        view = (b, 1, 1, 1)
        pixels = pixels * self._uniform(pixels, 1 - self.brightness, 1 + self.brightness).view(view)
        mean = pixels.mean(dim=(1, 2, 3), keepdim=True)
        contrast = self._uniform(pixels, 1 - self.contrast, 1 + self.contrast).view(view)
        pixels = (pixels - mean) * contrast + mean
        grey = (pixels * pixels.new_tensor(_LUMA).view(1, 3, 1, 1)).sum(1, keepdim=True)
        saturation = self._uniform(pixels, 1 - self.saturation, 1 + self.saturation).view(view)
        pixels = (pixels - grey) * saturation + grey
        shuffle = torch.rand(b, device=pixels.device) < self.channel_shuffle
        order = torch.rand(b, 3, device=pixels.device).argsort(1)  # a random permutation each
        permuted = pixels.gather(1, order.view(b, 3, 1, 1).expand_as(pixels))
        return torch.where(shuffle.view(view), permuted, pixels)

    def _rendering(self, pixels: Tensor) -> Tensor:
        b = pixels.shape[0]
        if self.blur > 0:
            # a blend of the image and one fixed blur: cheaper than a kernel per image
            weight = self._uniform(pixels, *self.blur_amount)
            weight = weight * (torch.rand(b, device=pixels.device) < self.blur)
            pixels = torch.lerp(pixels, _gaussian_blur(pixels, BLUR_SIGMA), weight.view(b, 1, 1, 1))
        if self.noise > 0:
            std = self._uniform(pixels, 0, self.noise).view(b, 1, 1, 1)
            pixels = pixels + torch.randn_like(pixels) * std
        return pixels


def _gaussian_blur(pixels: Tensor, sigma: float) -> Tensor:
    """Separable 5-tap Gaussian blur of (B, C, H, W), reflected at the border."""
    c = pixels.shape[1]
    taps = torch.arange(-2, 3, device=pixels.device, dtype=pixels.dtype)
    kernel = torch.exp(-(taps**2) / (2 * sigma**2))
    kernel = (kernel / kernel.sum()).repeat(c, 1)  # (C, 5): one per channel
    padded = F.pad(pixels, (2, 2, 2, 2), mode="reflect")
    rows = F.conv2d(padded, kernel.view(c, 1, 1, 5), groups=c)
    return F.conv2d(rows, kernel.view(c, 1, 5, 1), groups=c)


class MirrorOnly(TrainAugmentation):
    """Only the left-right mirror: the preset under which a from-scratch ResNet learns the
    shapes soonest (configs/from_scratch.yaml and the shapes-weights build use it)."""

    def __init__(self, hflip: float = 0.5) -> None:
        super().__init__(
            hflip=hflip,
            translate=0.0,
            scale=(1.0, 1.0),
            rotate=0.0,
            brightness=0.0,
            contrast=0.0,
            saturation=0.0,
            channel_shuffle=0.0,
            blur=0.0,
            noise=0.0,
        )
