"""Official SAM checkpoints: where they live, how to fetch and verify them, how to load them.

`resolve_checkpoint` turns a model type (and an optional explicit path) into a local, verified
file. An explicit path is used where it is; otherwise the cache is searched and, failing that, the
official file is downloaded into a temporary file next to its final place, checked against its
sha256 and only then renamed into place, so an interrupted download never looks like a
checkpoint. Every file is hashed once (see `integrity`): a cached file or a user's copy of an
official file must have the official sha256, any other file has its digest recorded. Under
DDP, local rank 0 of each node does this while the other ranks wait at a barrier, so a node
downloads and hashes once. `load_sam` builds the architecture (`sam_registry`: the official
ones and `sam_tiny`, a small SAM with no official file that is trained here) and loads the
weights with `weights_only=True`, from a plain SAM state dict or a Lightning checkpoint of
`SamTuner`; segment_anything is imported only where a model is built.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from lit_gradcam.errors import ConfigError
from lit_gradcam.segmenters.integrity import verify_sha256, write_stamp

if TYPE_CHECKING:
    from segment_anything.modeling import Sam

#: Environment variable naming the checkpoint cache directory.
CACHE_ENV = "LIT_GRADCAM_CACHE"
_CHUNK = 1 << 20
_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class CheckpointSpec:
    """Where an official checkpoint is published and the sha256 of its bytes."""

    url: str
    sha256: str

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


_BASE_URL = "https://dl.fbaipublicfiles.com/segment_anything"

#: The official SAM checkpoints by `sam_model_registry` key.
SAM_CHECKPOINTS: dict[str, CheckpointSpec] = {
    "vit_b": CheckpointSpec(
        f"{_BASE_URL}/sam_vit_b_01ec64.pth",
        "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912",
    ),
    "vit_l": CheckpointSpec(
        f"{_BASE_URL}/sam_vit_l_0b3195.pth",
        "3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622",
    ),
    "vit_h": CheckpointSpec(
        f"{_BASE_URL}/sam_vit_h_4b8939.pth",
        "a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e",
    ),
}

#: Model types with no official file: the command that trains one here.
TRAIN_COMMANDS: dict[str, str] = {"sam_tiny": "python main.py fit --config configs/sam_tiny.yaml"}

#: Image-encoder embedding width of each known architecture, to name a mismatched file.
_EMBED_DIM_TO_TYPE = {768: "vit_b", 1024: "vit_l", 1280: "vit_h", 128: "sam_tiny"}
_PATCH_KEY = "image_encoder.patch_embed.proj.weight"

#: Attribute under which `SamTuner` holds its `Sam`: the prefix of its Lightning state dict.
LIGHTNING_PREFIX = "sam."


class CheckpointDownloadError(RuntimeError):
    """A checkpoint could not be downloaded or failed verification; says where to put it."""


class NoOfficialCheckpointError(ValueError):
    """A model type has no published checkpoint and no file was given; says how to get one."""


class CheckpointArchitectureError(RuntimeError):
    """A checkpoint file does not hold the weights of the requested architecture."""


def default_cache_dir() -> Path:
    """`$LIT_GRADCAM_CACHE` if set, else torch hub's `checkpoints/` directory."""
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path(torch.hub.get_dir()) / "checkpoints"


def resolve_checkpoint(
    model_type: str,
    checkpoint: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    registry: Mapping[str, CheckpointSpec] = SAM_CHECKPOINTS,
    progress: bool = True,
) -> Path:
    """Local, verified path of the checkpoint for `model_type`: `checkpoint` if given, else the
    cached official file, downloaded first if it is not cached yet."""
    with _local_rank_zero_first():
        if checkpoint is not None:
            return _verified_user_file(Path(checkpoint).expanduser(), model_type, registry)
        return _verified_cached_file(model_type, cache_dir, registry, progress)


@contextlib.contextmanager
def _local_rank_zero_first() -> Iterator[None]:
    """Run the block on local rank 0 of each node while the other ranks wait at a barrier.

    The waiting ranks then run it too and find the file and its stamp in place. If rank 0
    fails, the others still pass the barrier and fail with their own message rather than hang.
    """
    if not (dist.is_available() and dist.is_initialized()):
        yield
        return
    leader = dist.get_node_local_rank(fallback_rank=dist.get_rank()) == 0
    if not leader:
        dist.barrier()
    try:
        yield
    finally:
        if leader:
            dist.barrier()


def _verified_user_file(
    path: Path, model_type: str, registry: Mapping[str, CheckpointSpec]
) -> Path:
    """`path`, hashed once: against the official sha256 if it carries an official file's name
    (a copy of that file), else only recorded (the user's own weights)."""
    if not path.is_file():
        raise FileNotFoundError(f"SAM checkpoint for {model_type!r} not found: {path}")
    official = next((spec for spec in registry.values() if spec.filename == path.name), None)
    if official is None:
        verify_sha256(path)
    else:
        verify_sha256(
            path,
            official.sha256,
            advice=f"Its name is that of the official checkpoint {official.url}: download it "
            f"again and save it as {path}, or, if it holds your own weights, give it another name.",
        )
    return path


def _verified_cached_file(
    model_type: str,
    cache_dir: str | os.PathLike[str] | None,
    registry: Mapping[str, CheckpointSpec],
    progress: bool,
) -> Path:
    """The official file for `model_type` in the cache, downloaded if missing, hashed once."""
    if model_type not in registry:
        raise NoOfficialCheckpointError(
            f"no official checkpoint for model_type {model_type!r}; "
            f"known: {sorted(registry)} (or pass checkpoint=<path>)"
        )
    spec = registry[model_type]
    directory = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = directory / spec.filename
    if not target.is_file():
        download(spec, target, progress=progress)
    verify_sha256(
        target,
        spec.sha256,
        advice=f"Delete it and run again to download it afresh. {_manual_hint(spec.url, target)}",
    )
    return target


def download(spec: CheckpointSpec, target: Path, progress: bool = True) -> None:
    """Fetch `spec.url` to `target` via a verified temporary file in the same directory, and
    stamp it with the sha256 computed on the way."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=".part"
        )
    except OSError as err:
        raise CheckpointDownloadError(
            f"cannot write to the checkpoint cache {target.parent} ({err}): point ${CACHE_ENV} "
            f"at a writable folder. {_manual_hint(spec.url, target)}"
        ) from err
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            digest = _fetch(spec.url, out, target, progress)
        if digest != spec.sha256:
            raise CheckpointDownloadError(
                f"sha256 mismatch for {spec.url}: expected {spec.sha256}, got {digest}; "
                f"the download was deleted. {_manual_hint(spec.url, target)}"
            )
        os.replace(tmp, target)
        write_stamp(target, digest)
    finally:
        tmp.unlink(missing_ok=True)


def _fetch(url: str, out, target: Path, progress: bool) -> str:
    """Stream `url` into the open file `out`; the sha256 hex digest of what was received."""
    digest = hashlib.sha256()
    received = 0
    try:
        with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response:
            length = response.headers.get("Content-Length")
            expected = int(length) if length is not None else None
            with tqdm(
                total=expected,
                unit="B",
                unit_scale=True,
                desc=target.name,
                disable=not progress,
            ) as bar:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
    except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
        raise CheckpointDownloadError(
            f"could not download {url}: {err}. {_manual_hint(url, target)}"
        ) from err
    if expected is not None and received != expected:
        raise CheckpointDownloadError(
            f"truncated download of {url}: received {received} of {expected} bytes; "
            f"the partial file was deleted. {_manual_hint(url, target)}"
        )
    return digest.hexdigest()


def _manual_hint(url: str, target: Path) -> str:
    return f"To install it by hand, download {url} and save it as {target}"


def build_sam_tiny(checkpoint: str | os.PathLike[str] | None = None) -> Sam:
    """A small SAM (about 1.8 M parameters) for 64-pixel inputs, wired as `build_sam.py` wires
    the official ones: a 4-block ViT on 4-pixel patches with global attention and absolute
    positions only (relative ones cost more than they are worth at 16 x 16; attention fused,
    `fused_attention`), and a 128-wide prompt encoder and mask decoder (64 wide, the decoder
    drew borders worse for the same training time); the image embedding is 16 x 16
    (img_size // patch_size).

    checkpoint: optional weights (plain state dict or `SamTuner` checkpoint), like the official
    builders' argument.
    """
    from segment_anything.modeling import (
        ImageEncoderViT,
        MaskDecoder,
        PromptEncoder,
        Sam,
        TwoWayTransformer,
    )

    from lit_gradcam.segmenters.fused_attention import fuse_attention

    img_size, patch_size, prompt_dim = 64, 4, 128
    grid = img_size // patch_size
    sam = Sam(
        image_encoder=fuse_attention(
            ImageEncoderViT(
                img_size=img_size,
                patch_size=patch_size,
                embed_dim=128,
                depth=4,
                num_heads=4,
                mlp_ratio=4,
                out_chans=prompt_dim,
                qkv_bias=True,
                norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
                window_size=0,
            )
        ),
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
            f"{path} is not a loadable SAM state dict for {model_type!r}: {err}"
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
    """The model type whose image-encoder width matches `state_dict`, if any."""
    if not isinstance(state_dict, Mapping):
        return None
    weight = state_dict.get(_PATCH_KEY)
    if not isinstance(weight, torch.Tensor):
        return None
    return _EMBED_DIM_TO_TYPE.get(weight.shape[0])
