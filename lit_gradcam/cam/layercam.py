"""LayerCAM (Jiang et al., 2021): every position weighted by its own positive gradient."""

from __future__ import annotations

from torch import Tensor

from lit_gradcam.cam.base import BaseCAM


class LayerCAM(BaseCAM):
    """``ReLU(sum_c ReLU(g_c) * A_c)``, per layer; see `BaseCAM` for the options."""

    def layer_map(self, activations: Tensor, gradients: Tensor) -> Tensor:
        return (gradients.clamp_min(0) * activations).sum(1)
