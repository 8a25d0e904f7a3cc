"""`CamSpec`: which class-activation map to compute, as plain values a YAML file can name."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CamSpec:
    """Which CAM a strategy reads.

    method: "gradcam" (Selvaraju et al.), "gradcam++" or "layercam".
    layers: dotted module names in the classifier's backbone, e.g. ("layer2.1",). Several are
        averaged, then rescaled to [0, 1].
    flip_average: average the map with the mirrored map of the mirrored image, which cancels a
        learned left-right bias of the peak.
    Frozen and hashable so the evaluation can compute each distinct spec once per batch.
    """

    method: str = "gradcam"
    layers: tuple[str, ...] = ("layer2.1",)
    flip_average: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))
        if self.method not in CAM_METHODS:
            raise ValueError(f"CamSpec.method must be one of {CAM_METHODS}, got {self.method!r}")
        if not self.layers:
            raise ValueError("CamSpec.layers must name at least one layer, e.g. ['layer2.1']")


CAM_METHODS = ("gradcam", "gradcam++", "layercam")
