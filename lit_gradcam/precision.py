"""The trainer precision the CLI defaults to: mixed where the hardware runs it natively."""

from __future__ import annotations

import torch


def default_precision() -> str:
    """``bf16-mixed`` on a CUDA device with bfloat16 or a CPU with native bfloat16 matrix
    instructions (AVX512-BF16, AMX), ``16-mixed`` on an older CUDA device, else ``32-true``
    (emulated bfloat16 would be slower than float32)."""
    if torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    if torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return "bf16-mixed"
    return "32-true"
