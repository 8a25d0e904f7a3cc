"""Grad-CAM++ (Chattopadhay et al., 2018): channel weights from positive gradients, each
position weighted by the closed-form alpha of the paper's eq. 19."""

from __future__ import annotations

import torch
from torch import Tensor

from lit_gradcam.cam.base import BaseCAM

#: Keeps alpha's denominator positive; the grad-cam package's value, so maps match it.
ALPHA_EPS = 1e-6


class GradCAMPlusPlus(BaseCAM):
    """``w_c = sum_ij alpha_cij ReLU(g_cij)`` with
    ``alpha = g^2 / (2 g^2 + sum_ij(A_c) g^3 + eps)``; see `BaseCAM` for the options.

    Alpha only counts where g > 0, which is also where its denominator cannot vanish.
    """

    def layer_map(self, activations: Tensor, gradients: Tensor) -> Tensor:
        squared = gradients.square()
        total = activations.sum((2, 3), keepdim=True)
        alpha = squared / (2 * squared + total * squared * gradients + ALPHA_EPS)
        weights = torch.where(gradients > 0, gradients * alpha, 0).sum((2, 3))
        return torch.einsum("bc,bchw->bhw", weights, activations)
