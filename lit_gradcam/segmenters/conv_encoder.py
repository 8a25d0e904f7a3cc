"""`sam_tiny`'s image encoder: a small residual CNN in place of SAM's ViT.

Trained from scratch on a small budget, a convolutional encoder learns where an object's border
is far sooner than a ViT of the same cost; RepViT-SAM and EfficientViT-SAM likewise keep SAM's
prompt encoder and mask decoder behind a convolutional encoder. It maps the preprocessed
(B, 3, img_size, img_size) image to the (B, out_chans, img_size / STRIDE, img_size / STRIDE)
embedding that SAM's mask decoder reads, and has the `img_size` that `SamPredictor` and
`Sam.preprocess` read from an image encoder.
"""

from __future__ import annotations

import torch
from torch import nn


def _conv_bn(in_chans: int, out_chans: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    """3x3 convolution (same size at stride 1), batch norm."""
    return nn.Sequential(
        nn.Conv2d(in_chans, out_chans, 3, stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(out_chans),
    )


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with a skip, as ResNet's basic block; the first is dilated to widen
    the view at a fixed resolution."""

    def __init__(self, chans: int, dilation: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv_bn(chans, chans, dilation=dilation), nn.ReLU(inplace=True), _conv_bn(chans, chans)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.body(x))


class ConvImageEncoder(nn.Module):
    """A stride-4 residual CNN: full resolution to 32 channels, half resolution to 64 (two
    blocks), quarter resolution to `width` (blocks dilated 1, 2, 4, 1), and a 1x1 projection to
    the prompt encoder's `out_chans`. `channels_last` runs it in the NHWC layout, the one
    oneDNN's and cuDNN's convolutions are fastest in (`benchmarks/sam_tiny_step.py`)."""

    #: Input pixels per embedding cell along each side.
    STRIDE = 4

    def __init__(
        self, img_size: int, out_chans: int, width: int = 128, channels_last: bool = True
    ) -> None:
        super().__init__()
        self.img_size = img_size
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.stem = nn.Sequential(
            _conv_bn(3, 32),
            nn.ReLU(inplace=True),
            _conv_bn(32, 64, stride=2),
            nn.ReLU(inplace=True),
        )
        self.half_res = nn.Sequential(ResidualBlock(64), ResidualBlock(64))
        self.down = nn.Sequential(_conv_bn(64, width, stride=2), nn.ReLU(inplace=True))
        self.quarter_res = nn.Sequential(*(ResidualBlock(width, d) for d in (1, 2, 4, 1)))
        self.neck = nn.Conv2d(width, out_chans, 1)
        self.to(memory_format=self.memory_format)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=self.memory_format)
        return self.neck(self.quarter_res(self.down(self.half_res(self.stem(x)))))
