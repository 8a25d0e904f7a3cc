"""SAM 2.1 architectures and loading their weights: `build_sam2_model` builds one with sam2's own
`build_sam2` and loads a checkpoint in sam2's format (the state dict under "model"), official
(fetched and verified by `checkpoints`) or the user's. sam2 is imported only once a model is
built, so that a config naming `Sam2Segmenter` parses without it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from lit_gradcam.errors import ConfigError, UserError
from lit_gradcam.segmenters.checkpoints import SAM2_CHECKPOINTS, resolve_checkpoint
from lit_gradcam.segmenters.sam_models import CheckpointArchitectureError, why_unloadable

if TYPE_CHECKING:
    from sam2.modeling.sam2_base import SAM2Base

#: sam2's config of each model type (a name inside the sam2 package, read by hydra).
SAM2_CONFIGS: dict[str, str] = {
    "hiera_t": "configs/sam2.1/sam2.1_hiera_t.yaml",
    "hiera_s": "configs/sam2.1/sam2.1_hiera_s.yaml",
    "hiera_b+": "configs/sam2.1/sam2.1_hiera_b+.yaml",
    "hiera_l": "configs/sam2.1/sam2.1_hiera_l.yaml",
}
#: The install that docs/sam.md and .ci/run use: pinned, with no CUDA extension to compile.
INSTALL_COMMAND = "SAM2_BUILD_CUDA=0 pip install --no-build-isolation sam2==1.1.0"

#: Hiera trunk (patch-embedding width, number of blocks) of each model type, to name a
#: mismatched file.
_TRUNK_TO_TYPE = {
    (96, 12): "hiera_t",
    (96, 16): "hiera_s",
    (112, 24): "hiera_b+",
    (144, 48): "hiera_l",
}
_PATCH_KEY = "image_encoder.trunk.patch_embed.proj.weight"
_BLOCK_PREFIX = "image_encoder.trunk.blocks."


class Sam2NotInstalledError(UserError, ImportError):
    """The sam2 package cannot be imported; says how to install it."""


def check_model_type(model_type: str) -> str:
    """`model_type` if it names a SAM 2.1 architecture, else a `ConfigError` listing them."""
    if model_type not in SAM2_CONFIGS:
        raise ConfigError(
            f"SAM 2.1 model_type {model_type!r} is unknown; known: {sorted(SAM2_CONFIGS)}"
        )
    return model_type


def build_untrained(model_type: str) -> SAM2Base:
    """`model_type` with random weights, on the CPU, in eval mode, as `build_sam2` builds it for
    `SAM2ImagePredictor` (its default post-processing included)."""
    try:
        from sam2.build_sam import build_sam2
    except ImportError as err:
        raise Sam2NotInstalledError(
            f"SAM 2.1 needs the sam2 package, which cannot be imported ({err}); install it with: "
            f"{INSTALL_COMMAND}"
        ) from err
    return build_sam2(SAM2_CONFIGS[check_model_type(model_type)], ckpt_path=None, device="cpu")


def load_weights(model: SAM2Base, model_type: str, path: Path) -> SAM2Base:
    """`model` (a `model_type`) with the weights of the sam2 checkpoint at `path` (weights only).

    Raises CheckpointArchitectureError naming the file when it is no sam2 checkpoint or holds
    another architecture's weights.
    """
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointArchitectureError(
            f"{path} is not a loadable SAM 2.1 checkpoint for {model_type!r}: "
            + why_unloadable(path, err)
        ) from err
    state_dict = loaded.get("model") if isinstance(loaded, Mapping) else None
    if not isinstance(state_dict, Mapping):
        raise CheckpointArchitectureError(
            f"{path} is not a SAM 2.1 checkpoint: sam2 keeps the weights under the key 'model' "
            "({'model': state_dict}, as in the official files)"
        )
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as err:
        guess = guess_model_type(state_dict)
        looks = f"it looks like a {guess!r} checkpoint" if guess else "its architecture is unknown"
        raise CheckpointArchitectureError(
            f"{path} does not match SAM 2.1 model_type {model_type!r} ({looks}): {err}"
        ) from err
    return model.eval()


def guess_model_type(state_dict: Mapping[str, object]) -> str | None:
    """The model type whose Hiera trunk `state_dict` holds, if any."""
    weight = state_dict.get(_PATCH_KEY)
    if not isinstance(weight, torch.Tensor):
        return None
    blocks = {
        key[len(_BLOCK_PREFIX) :].split(".", 1)[0]
        for key in state_dict
        if key.startswith(_BLOCK_PREFIX)
    }
    return _TRUNK_TO_TYPE.get((weight.shape[0], len(blocks)))


def build_sam2_model(model_type: str, checkpoint: str | None) -> SAM2Base:
    """`model_type` with the weights at `checkpoint`, or, with none, the official SAM 2.1 weights
    (fetched and verified once, as SAM 1's). sam2 is imported before any file is fetched."""
    model = build_untrained(model_type)
    path = resolve_checkpoint(model_type, checkpoint, registry=SAM2_CHECKPOINTS)
    return load_weights(model, model_type, path)
