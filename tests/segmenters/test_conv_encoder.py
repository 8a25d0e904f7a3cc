"""ConvImageEncoder: its channels-last layout changes the speed, never the embedding, and it
survives loading weights saved in any layout."""

from __future__ import annotations

from pathlib import Path

import torch

from lit_gradcam.segmenters.conv_encoder import ConvImageEncoder
from lit_gradcam.segmenters.sam_models import build_sam_tiny


def _channels_last(encoder: ConvImageEncoder) -> bool:
    """Whether every 3x3 convolution's weight is stored NHWC (a 1x1's is in both layouts)."""
    convs = [m for m in encoder.modules() if isinstance(m, torch.nn.Conv2d)]
    weights = [m.weight for m in convs if m.kernel_size[0] > 1]
    return all(w.is_contiguous(memory_format=torch.channels_last) for w in weights)


def test_channels_last_and_nchw_encoders_agree_forward_and_backward() -> None:
    torch.manual_seed(0)
    nhwc = ConvImageEncoder(img_size=64, out_chans=16, width=32)
    nchw = ConvImageEncoder(img_size=64, out_chans=16, width=32, channels_last=False)
    nchw.load_state_dict(nhwc.state_dict())
    nhwc, nchw = nhwc.double(), nchw.double()  # float64: no rounding to tell the layouts apart
    assert _channels_last(nhwc) and not _channels_last(nchw)
    images = torch.randn(3, 3, 64, 64, dtype=torch.float64)
    for mode in (True, False):  # batch statistics, then the running ones
        nhwc.train(mode), nchw.train(mode)
        grads = []
        for encoder in (nhwc, nchw):
            x = images.clone().requires_grad_(True)
            out = encoder(x)
            assert out.shape == (3, 16, 16, 16)
            out.square().sum().backward()
            grads.append((out.detach(), x.grad))
        for nhwc_value, nchw_value in zip(*grads, strict=True):
            torch.testing.assert_close(nhwc_value, nchw_value, atol=1e-9, rtol=1e-7)


def test_weights_saved_in_nchw_load_into_a_channels_last_sam_tiny(tmp_path: Path) -> None:
    torch.manual_seed(0)
    state = {k: v.contiguous() for k, v in build_sam_tiny().state_dict().items()}
    path = tmp_path / "sam_tiny.pth"
    torch.save(state, path)
    sam = build_sam_tiny(path).eval()
    assert _channels_last(sam.image_encoder)
    for name, value in sam.state_dict().items():
        torch.testing.assert_close(value, state[name], rtol=0, atol=0)
