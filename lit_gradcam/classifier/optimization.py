"""The optimizer both of the classifier side's training runs use: AdamW, fused where torch has
the kernel, under an optional one-cycle schedule stepped per optimizer step. Each run builds its
own: the classifier and the no-shape flag's net share none of it."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch


def adamw(module: L.LightningModule, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW over `module`'s parameters, one fused kernel for all of them on CPU and CUDA."""
    return torch.optim.AdamW(
        module.parameters(),
        lr=lr,
        weight_decay=weight_decay,
        fused=module.device.type in ("cpu", "cuda") or None,
    )


def with_one_cycle(optimizer: torch.optim.Optimizer, lr: float, steps: int) -> dict[str, Any]:
    """Lightning's optimizer configuration: `optimizer` under a one-cycle schedule that peaks at
    `lr` and spans `steps` optimizer steps."""
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
