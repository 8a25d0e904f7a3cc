"""Grad-CAM (Selvaraju et al., 2017): channels weighted by their spatially averaged gradient."""

from __future__ import annotations

import torch
from torch import Tensor

from lit_gradcam.cam.base import BaseCAM


class GradCAM(BaseCAM):
    """``ReLU(sum_c mean_ij(dy/dA_cij) A_c)``, per layer; see `BaseCAM` for the options."""

    def layer_map(self, activations: Tensor, gradients: Tensor) -> Tensor:
        return torch.einsum("bc,bchw->bhw", gradients.mean((2, 3)), activations)
