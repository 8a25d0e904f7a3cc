"""`ShapePresence`: a small fully-convolutional net that says, per pixel, whether a shape is there.

`predict`'s no-shape flag reads it (`ShapeClassifier.no_shape`). It is a prompt-free segmenter:
it learns from the training masks, as segmenters may, and shares nothing with the classifier's
ResNet, whose loss never sees a mask. Each training image's background is a negative example
for it, so it learns what a shape is not from the folder's own photos and textures. The
classifier, which learns only from labels, never has to say "nothing here", and its logits'
energy stays high on photos of round or spiky things (docs/usage.md has both measured).

Training jitters colours and mirrors (the same
for image and mask), so the net looks at flat regions and their outlines, not at one palette.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_gradcam.segmenters.conv_encoder import _conv_bn

#: Seed of the net's initial weights: drawn apart from torch's global generator, so adding the
#: net leaves the classifier's own initialisation and augmentation draws as they were.
INIT_SEED = 0
#: Largest per-channel gain change and offset (in normalised units) of the training jitter.
GAIN, OFFSET = 0.4, 0.5


def _conv_relu(in_chans: int, out_chans: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(_conv_bn(in_chans, out_chans, stride, dilation), nn.ReLU(inplace=True))


class ShapePresence(nn.Module):
    """Per-pixel shape logits; `score` is an image's presence score.

    Three resolutions, each one's features upsampled to the full one and read together by a
    1x1 head: the full resolution sees a flat region's edges, the quarter resolution (dilated,
    so its view spans most of the image) whether the region is a shape or part of a texture.

    Args:
        width: channels at full resolution (three times that at half, four at quarter).
        top_pixels: how many of the most confident pixels `score` averages: a shape covers
            many, a stray bright patch of a photo few.
    """

    def __init__(self, width: int = 16, top_pixels: int = 30) -> None:
        super().__init__()
        self.top_pixels = top_pixels
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(INIT_SEED)
            self.full_res = _conv_relu(3, width)
            self.half_res = nn.Sequential(
                _conv_relu(width, 3 * width, stride=2), _conv_relu(3 * width, 3 * width)
            )
            self.quarter_res = nn.Sequential(
                _conv_relu(3 * width, 4 * width, stride=2),
                _conv_relu(4 * width, 4 * width, dilation=2),
                _conv_relu(4 * width, 4 * width, dilation=4),
            )
            self.head = nn.Conv2d(8 * width, 1, 1)
        self.to(memory_format=torch.channels_last)

    def forward(self, images: Tensor) -> Tensor:
        """Logits (N, H, W) of normalised images (N, 3, H, W)."""
        full = self.full_res(images.contiguous(memory_format=torch.channels_last))
        half = self.half_res(full)
        quarter = self.quarter_res(half)
        size = full.shape[-2:]
        features = [full] + [
            F.interpolate(x, size=size, mode="bilinear", align_corners=False)
            for x in (half, quarter)
        ]
        return self.head(torch.cat(features, dim=1))[:, 0]

    def score(self, images: Tensor) -> Tensor:
        """Per image, the mean probability of its `top_pixels` most confident pixels: low where
        no pixel looks like part of a shape."""
        probabilities = torch.sigmoid(self(images)).flatten(1)
        top = min(self.top_pixels, probabilities.shape[1])
        return probabilities.topk(top, dim=1).values.mean(dim=1)

    def loss(self, images: Tensor, masks: Tensor, generator: torch.Generator) -> Tensor:
        """Binary cross-entropy against the masks, after a colour jitter and a mirror drawn from
        `generator`, per image."""
        count = len(images)
        gain = 1 + GAIN * (2 * torch.rand(count, 3, 1, 1, generator=generator) - 1)
        offset = OFFSET * (2 * torch.rand(count, 3, 1, 1, generator=generator) - 1)
        mirror = torch.rand(count, generator=generator) < 0.5
        images = images.float() * gain.to(images.device) + offset.to(images.device)
        targets = masks.float()
        flip = mirror.to(images.device)
        images = torch.where(flip[:, None, None, None], images.flip(-1), images)
        targets = torch.where(flip[:, None, None], targets.flip(-1), targets)
        return F.binary_cross_entropy_with_logits(self(images), targets)
