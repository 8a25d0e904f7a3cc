"""`ShapePresence`: a small fully-convolutional net that says, per pixel, whether a shape is there.

`predict`'s no-shape flag reads it (`lit_gradcam.classifier.no_shape`). It is a prompt-free
segmenter: it learns from the training masks, as segmenters may, in a phase of its own
(`PresenceTraining`), and shares nothing with the classifier's ResNet, whose loss never sees a
mask. Each training image's background is a negative example for it, so it learns what a shape
is not from the folder's own photos and textures.

Training jitters colours and mirrors, the same for image and mask (`TrainAugmentation` moves
images only, so it cannot serve here): the net looks at flat regions and their outlines, not at
one palette.
"""

from __future__ import annotations

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_gradcam.classifier.optimization import adamw, with_one_cycle
from lit_gradcam.data.pixels import IGNORED

#: Largest per-channel gain change and offset (in normalised units) of the training jitter.
GAIN, OFFSET = 0.4, 0.5


def _conv_bn_relu(in_chans: int, out_chans: int, stride: int = 1, dilation: int = 1) -> nn.Module:
    """3x3 convolution (same size at stride 1), batch norm, ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_chans, out_chans, 3, stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(out_chans),
        nn.ReLU(inplace=True),
    )


class ShapePresence(nn.Module):
    """Per-pixel shape logits; `score` is an image's presence score.

    Three resolutions, each read by a 1x1 head of its own; the half and quarter resolution's
    one-channel logits are upsampled and added to the full one's. (A 1x1 head over the three
    feature maps upsampled and stacked is the same function: both the head and bilinear
    upsampling are linear. Upsampling one channel instead of dozens is most of a step's time
    saved.) The full resolution sees a flat region's edges, the quarter resolution (dilated, so
    its view spans most of the image) whether the region is a shape or part of a texture.

    Args:
        width: channels at full resolution (three times that at half, four at quarter).
        top_pixels: how many of the most confident pixels `score` averages: a shape covers
            many, a stray bright patch of a photo few.
    """

    def __init__(self, width: int = 16, top_pixels: int = 30) -> None:
        super().__init__()
        self.top_pixels = top_pixels
        self.full_res = _conv_bn_relu(3, width)
        self.half_res = nn.Sequential(
            _conv_bn_relu(width, 3 * width, stride=2), _conv_bn_relu(3 * width, 3 * width)
        )
        self.quarter_res = nn.Sequential(
            _conv_bn_relu(3 * width, 4 * width, stride=2),
            _conv_bn_relu(4 * width, 4 * width, dilation=2),
            _conv_bn_relu(4 * width, 4 * width, dilation=4),
        )
        self.heads = nn.ModuleList(
            [nn.Conv2d(width, 1, 1), nn.Conv2d(3 * width, 1, 1, bias=False)]
            + [nn.Conv2d(4 * width, 1, 1, bias=False)]
        )
        self.to(memory_format=torch.channels_last)

    def forward(self, images: Tensor) -> Tensor:
        """Logits (N, H, W) of normalised images (N, 3, H, W)."""
        full = self.full_res(images.contiguous(memory_format=torch.channels_last))
        half = self.half_res(full)
        quarter = self.quarter_res(half)
        logits = self.heads[0](full)
        for head, features in zip(self.heads[1:], (half, quarter), strict=True):
            logits = logits + F.interpolate(
                head(features), size=full.shape[-2:], mode="bilinear", align_corners=False
            )
        return logits[:, 0]

    def score(self, images: Tensor) -> Tensor:
        """Per image, the mean probability of its `top_pixels` most confident pixels: low where
        no pixel looks like part of a shape."""
        probabilities = torch.sigmoid(self(images).float()).flatten(1)
        top = min(self.top_pixels, probabilities.shape[1])
        return probabilities.topk(top, dim=1).values.mean(dim=1)

    def loss(self, images: Tensor, masks: Tensor, generator: torch.Generator) -> Tensor:
        """Binary cross-entropy against the masks (bool, or class maps whose 255 pixels are left
        out), after a colour jitter and a mirror drawn from `generator`, per image."""
        count = len(images)
        gain = 1 + GAIN * (2 * torch.rand(count, 3, 1, 1, generator=generator) - 1)
        offset = OFFSET * (2 * torch.rand(count, 3, 1, 1, generator=generator) - 1)
        mirror = torch.rand(count, generator=generator) < 0.5
        images = images.float() * gain.to(images.device) + offset.to(images.device)
        counted = masks != IGNORED if masks.dtype != torch.bool else torch.ones_like(masks)
        targets = ((masks != 0) & counted).float()
        flip = mirror.to(images.device)[:, None, None]
        images = torch.where(flip[..., None], images.flip(-1), images)
        targets = torch.where(flip, targets.flip(-1), targets)
        weights = torch.where(flip, counted.flip(-1), counted).float()
        return F.binary_cross_entropy_with_logits(self(images).float(), targets, weights)


class PresenceTraining(L.LightningModule):
    """Trains a `ShapePresence` from (image, label, mask) batches: its own AdamW and one-cycle
    schedule over the run, nothing shared with any other model. Labels are not read.

    Args:
        net: the net to train (in place).
        lr, weight_decay: AdamW settings; `lr` is the one-cycle schedule's peak.
        seed: seed of the jitter's own generator.
    """

    def __init__(self, net: ShapePresence, lr: float, weight_decay: float, seed: int) -> None:
        super().__init__()
        self.net = net
        self.lr, self.weight_decay = lr, weight_decay
        self.generator = torch.Generator().manual_seed(seed)

    def training_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> Tensor:
        images, _, masks = batch
        loss = self.net.loss(images, masks, self.generator)
        self.log("no_shape/presence_loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self):  # noqa: ANN201 - Lightning's own union type
        optimizer = adamw(self, self.lr, self.weight_decay)
        return with_one_cycle(optimizer, self.lr, int(self.trainer.max_steps))
