"""SAM architectures and loading their weights: `sam_registry` (the official builders and
`sam_tiny`, a small SAM with no official file that is trained here) and `load_sam`, which builds
one and loads a state dict with `weights_only=True`, from a plain SAM state dict or a Lightning
checkpoint of `SamTuner`. segment_anything is imported only where a model is built.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from lit_gradcam.errors import ConfigError, UserError
from lit_gradcam.segmenters.checkpoints import (
    SAM_CHECKPOINTS,
    NoOfficialCheckpointError,
    resolve_checkpoint,
)

if TYPE_CHECKING:
    from segment_anything.modeling import Sam

#: Model types with no official file: the command that trains one here.
TRAIN_COMMANDS: dict[str, str] = {"sam_tiny": "python main.py fit --config configs/sam_tiny.yaml"}

#: Image-encoder embedding width of each known architecture, to name a mismatched file.
#: 128 is an earlier `sam_tiny`, whose image encoder was a ViT.
_EMBED_DIM_TO_TYPE = {768: "vit_b", 1024: "vit_l", 1280: "vit_h", 128: "sam_tiny"}
_PATCH_KEY = "image_encoder.patch_embed.proj.weight"
#: A weight only `sam_tiny`'s convolutional image encoder has.
_CONV_ENCODER_KEY = "image_encoder.stem.0.0.weight"

#: Attribute under which `SamTuner` holds its `Sam`: the prefix of its Lightning state dict.
LIGHTNING_PREFIX = "sam."


class CheckpointArchitectureError(UserError, RuntimeError):
    """A checkpoint file does not hold the weights of the requested architecture."""


def build_sam_tiny(checkpoint: str | os.PathLike[str] | None = None) -> Sam:
    """A small SAM (about 2.2 M parameters) for 64-pixel inputs, wired as `build_sam.py` wires
    the official ones, with a residual CNN for image encoder (`ConvImageEncoder`: a ViT
    trained from scratch here drew coarser masks for the same training time) and a 128-wide
    prompt encoder and mask decoder; the image embedding is 16 x 16.

    checkpoint: optional weights (plain state dict or `SamTuner` checkpoint), like the official
    builders' argument.
    """
    from segment_anything.modeling import MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    from lit_gradcam.segmenters.conv_encoder import ConvImageEncoder

    img_size, prompt_dim = 64, 128
    grid = img_size // ConvImageEncoder.STRIDE
    sam = Sam(
        image_encoder=ConvImageEncoder(img_size=img_size, out_chans=prompt_dim),
        prompt_encoder=PromptEncoder(
            embed_dim=prompt_dim,
            image_embedding_size=(grid, grid),
            input_image_size=(img_size, img_size),
            mask_in_chans=16,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(
                depth=2, embedding_dim=prompt_dim, mlp_dim=4 * prompt_dim, num_heads=4
            ),
            transformer_dim=prompt_dim,
            iou_head_depth=3,
            iou_head_hidden_dim=prompt_dim,
        ),
    )
    if checkpoint is not None:
        loaded = torch.load(checkpoint, map_location="cpu", weights_only=True)
        sam.load_state_dict(sam_state_dict(loaded))
    return sam.eval()


def sam_registry() -> dict[str, Callable[..., Sam]]:
    """Builders by model type: `sam_model_registry` and `sam_tiny`."""
    from segment_anything import sam_model_registry

    return {**sam_model_registry, "sam_tiny": build_sam_tiny}


def sam_state_dict(loaded: object) -> object:
    """The plain SAM state dict inside what `torch.load` returned: a Lightning checkpoint of
    `SamTuner` (weights under "state_dict", keys prefixed "sam.") is unwrapped; anything else
    is returned as it is."""
    if isinstance(loaded, Mapping) and isinstance(loaded.get("state_dict"), Mapping):
        return {
            key.removeprefix(LIGHTNING_PREFIX): value
            for key, value in loaded["state_dict"].items()
            if key.startswith(LIGHTNING_PREFIX)
        }
    return loaded


def why_unloadable(path: Path, error: Exception) -> str:
    """What is wrong with a file `torch.load` refused, in words."""
    if path.stat().st_size == 0:
        return "an empty file"
    if not zipfile.is_zipfile(path):
        return "not a PyTorch file (torch.save writes a zip archive), or cut short"
    return f"{type(error).__name__}: {error}"


def load_sam(
    model_type: str,
    checkpoint_path: str | os.PathLike[str],
    registry: Mapping[str, Callable[..., Sam]] | None = None,
) -> Sam:
    """Build `registry[model_type]` (default: `sam_registry()`) and load the state dict at
    `checkpoint_path` (weights only; a `SamTuner` Lightning checkpoint is unwrapped).

    Raises CheckpointArchitectureError naming the file and both architectures when the file
    holds another model's weights.
    """
    if registry is None:
        registry = sam_registry()
    if model_type not in registry:
        raise ConfigError(f"unknown SAM model_type {model_type!r}; known: {sorted(registry)}")
    path = Path(checkpoint_path)
    sam = registry[model_type]()
    try:
        state_dict = sam_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except Exception as err:
        raise CheckpointArchitectureError(
            f"{path} is not a loadable SAM state dict for {model_type!r}: "
            + why_unloadable(path, err)
        ) from err
    try:
        sam.load_state_dict(state_dict)
    except RuntimeError as err:
        guess = guess_model_type(state_dict)
        looks = f"it looks like a {guess!r} checkpoint" if guess else "its architecture is unknown"
        if guess == model_type and model_type in TRAIN_COMMANDS:
            looks = (
                f"it was saved by an earlier build of {model_type!r} with other layer sizes; "
                f"train a new one: {TRAIN_COMMANDS[model_type]}"
            )
        raise CheckpointArchitectureError(
            f"{path} does not match SAM model_type {model_type!r} ({looks}): {err}"
        ) from err
    return sam.eval()


def guess_model_type(state_dict: object) -> str | None:
    """The model type whose image encoder `state_dict` holds (by its ViT's width, or
    `sam_tiny`'s CNN), if any."""
    if not isinstance(state_dict, Mapping):
        return None
    if _CONV_ENCODER_KEY in state_dict:
        return "sam_tiny"
    weight = state_dict.get(_PATCH_KEY)
    if not isinstance(weight, torch.Tensor):
        return None
    return _EMBED_DIM_TO_TYPE.get(weight.shape[0])


def build_sam(model_type: str, checkpoint: str | None, untrained: bool = False) -> Sam:
    """`model_type` with the weights at `checkpoint`, or, with none, the official weights
    (fetched and verified once). A type with no official file (`sam_tiny`) and no checkpoint
    is built with random weights if `untrained` (a model about to be trained), else refused
    with how to train one."""
    if checkpoint is None and model_type not in SAM_CHECKPOINTS:
        if untrained:
            return sam_registry()[model_type]()
        how = TRAIN_COMMANDS.get(model_type)
        raise NoOfficialCheckpointError(
            f"SAM model_type {model_type!r} has no official checkpoint: "
            + (
                f"train one with `{how}` and pass its file as checkpoint "
                f"(e.g. checkpoints/{model_type}/last.ckpt)"
                if how
                else "pass the file of your own weights as checkpoint"
            )
        )
    return load_sam(model_type, resolve_checkpoint(model_type, checkpoint))
