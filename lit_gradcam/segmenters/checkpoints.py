"""Official SAM and SAM 2.1 checkpoints: where they are published, and how to fetch and verify
them.

`resolve_checkpoint` turns a model type (and an optional explicit path) into a local, verified
file. An explicit path is used where it is; otherwise the cache is searched and, failing that, the
official file is downloaded into a temporary file next to its final place, checked against its
sha256 and only then renamed into place, so an interrupted download never looks like a
checkpoint. Every file is hashed once (see `integrity`): a cached file or a user's copy of an
official file must have the official sha256, any other file has its digest recorded. Under
DDP, local rank 0 of each node does this while the other ranks wait (`distributed`), so a node
downloads and hashes once. Building a model from the file is `sam_models`' job.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from lit_gradcam.distributed import local_rank_zero_first
from lit_gradcam.errors import MissingFileError, UserError
from lit_gradcam.segmenters.integrity import verify_sha256, write_stamp

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

_SAM2_BASE_URL = "https://dl.fbaipublicfiles.com/segment_anything_2/092824"

#: The official SAM 2.1 checkpoints by `Sam2Segmenter` model type.
SAM2_CHECKPOINTS: dict[str, CheckpointSpec] = {
    "hiera_t": CheckpointSpec(
        f"{_SAM2_BASE_URL}/sam2.1_hiera_tiny.pt",
        "7402e0d864fa82708a20fbd15bc84245c2f26dff0eb43a4b5b93452deb34be69",
    ),
    "hiera_s": CheckpointSpec(
        f"{_SAM2_BASE_URL}/sam2.1_hiera_small.pt",
        "6d1aa6f30de5c92224f8172114de081d104bbd23dd9dc5c58996f0cad5dc4d38",
    ),
    "hiera_b+": CheckpointSpec(
        f"{_SAM2_BASE_URL}/sam2.1_hiera_base_plus.pt",
        "a2345aede8715ab1d5d31b4a509fb160c5a4af1970f199d9054ccfb746c004c5",
    ),
    "hiera_l": CheckpointSpec(
        f"{_SAM2_BASE_URL}/sam2.1_hiera_large.pt",
        "2647878d5dfa5098f2f8649825738a9345572bae2d4350a2468587ece47dd318",
    ),
}


class CheckpointDownloadError(UserError, RuntimeError):
    """A checkpoint could not be downloaded or failed verification; says where to put it."""


class NoOfficialCheckpointError(UserError, ValueError):
    """A model type has no published checkpoint and no file was given; says how to get one."""


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
    with local_rank_zero_first():
        if checkpoint is not None:
            return _verified_user_file(Path(checkpoint).expanduser(), model_type, registry)
        return _verified_cached_file(model_type, cache_dir, registry, progress)


def _verified_user_file(
    path: Path, model_type: str, registry: Mapping[str, CheckpointSpec]
) -> Path:
    """`path`, hashed once: against the official sha256 if it carries an official file's name
    (a copy of that file), else only recorded (the user's own weights). A missing file with an
    official name is named with where to download it."""
    official = next((spec for spec in registry.values() if spec.filename == path.name), None)
    if not path.is_file():
        how = (
            ""
            if official is None
            else f": download {official.url} and save it as {path}, or set checkpoint to null "
            "to have it downloaded into the cache"
        )
        raise MissingFileError(f"SAM checkpoint for {model_type!r} not found: {path}{how}")
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
