"""`CamSpec`: which class-activation map to compute, as plain values a YAML file can name."""

from __future__ import annotations

from dataclasses import dataclass

from lit_gradcam.errors import ConfigError


@dataclass(frozen=True)
class CamSpec:
    """Which CAM a strategy reads. The defaults are the report's: Grad-CAM at ``layer2.1``.

    method: "gradcam" (Selvaraju et al.), "gradcam++" or "layercam".
    layers: dotted module names in the classifier's backbone, e.g. ("layer2.1",). Several are
        averaged, then rescaled to [0, 1].
    flip_average: average the map with the mirrored map of the mirrored image, which cancels a
        learned left-right bias of the peak.
    input_scale: run the classifier on the image upscaled by this factor (bilinear) for a finer
        feature grid; the map is returned at the image's size. 1.0 = the image as it is.
    align: place each feature cell at its receptive-field centre (pixel stride x j in ResNets)
        instead of at the middle of its block of pixels (the grad-cam package's upsampling,
        which shifts a stride-8 map by 3.5 px right and down).
    `input_scale` and `align` lost to the default in the validation sweep and stay only for its
    rows (`configs/sweep.yaml`, `results/sweep_val.json`).
    Frozen and hashable so the evaluation can compute each distinct spec once per batch.
    """

    method: str = "gradcam"
    layers: tuple[str, ...] = ("layer2.1",)
    flip_average: bool = False
    input_scale: float = 1.0
    align: bool = False

    def __post_init__(self) -> None:
        layers = (self.layers,) if isinstance(self.layers, str) else tuple(self.layers)
        object.__setattr__(self, "layers", layers)
        if self.method not in CAM_METHODS:
            raise ConfigError(f"CamSpec.method must be one of {CAM_METHODS}, got {self.method!r}")
        if not self.layers:
            raise ConfigError("CamSpec.layers must name at least one layer, e.g. ['layer2.1']")
        if self.input_scale <= 0:
            raise ConfigError(f"CamSpec.input_scale must be positive, got {self.input_scale}")


CAM_METHODS = ("gradcam", "gradcam++", "layercam")
