"""Decoding one image file as the dataset reads it: verified, fully decoded, turned upright by its
EXIF orientation; `read_rgb` also turns it into the RGB a viewer shows."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from lit_gradcam.data.layout import DatasetError
from lit_gradcam.data.pixels import PixelError, viewer_rgb


def open_image(path: Path) -> Image.Image:
    """Read, verify (chunk CRCs), fully decode and turn upright (EXIF orientation, as viewers
    do, so a photo and its mask stay aligned) one image; raises whatever PIL raises."""
    data = path.read_bytes()
    if not data:
        raise ValueError("the file is empty (0 bytes)")
    try:
        probe = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:  # its message names an in-memory buffer, not the file
        raise UnidentifiedImageError("no image format PIL reads matches its content") from None
    with probe:
        probe.verify()
    image = Image.open(io.BytesIO(data))
    image.load()
    ImageOps.exif_transpose(image, in_place=True)
    return image


def read_rgb(path: Path) -> tuple[np.ndarray, str]:
    """The image at `path` as a viewer shows it and its note (see `viewer_rgb`); DatasetError
    naming the file if it is broken or its pixels have no 8-bit reading."""
    try:
        image = open_image(path)
    except Exception as error:  # PIL raises many types for broken files
        raise DatasetError(
            f"unreadable or truncated image {path}: {type(error).__name__}: {error}"
        ) from error
    try:
        return viewer_rgb(image)
    except PixelError as error:
        raise DatasetError(f"cannot read image {path}: {error}") from error


def open_or_error(path: Path) -> Image.Image | Exception:
    """`open_image`, or the exception it raised."""
    try:
        return open_image(path)
    except Exception as error:  # PIL raises many types for broken files
        return error
