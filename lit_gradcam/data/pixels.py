"""Pixels: a decoded PIL image -> the arrays the project reads, by fixed rules.

Images (`viewer_rgb`) come out as (H, W, 3) uint8, as an image viewer shows them:
- 8-bit modes (1, L, P, RGB, CMYK, ...) are converted to RGB;
- 16-bit greyscale (I;16, I;16L, I;16B, and I, read as 16-bit) is scaled from 0..65535 to 0..255
  (rounded); mode I values outside 0..65535, and modes with no defined 8-bit meaning (F, ...), are
  refused;
- transparency (an alpha channel, or a transparent palette index or colour): where any pixel is
  not fully opaque, the image is composited over white, what most viewers and browsers show, and
  the returned note says so; fully opaque alpha is dropped with no note.

Masks (`binary_mask`) follow the reference loader, `np.array(Image.open(mask), dtype=bool)`, where
it defines the answer, and are refused where it does not:
- single-band modes (1, L, I, I;16*, F) and palette masks: every non-zero value is the shape; a
  palette mask is read by its indices (index > 0), not by the colours they stand for;
- RGB: a pixel with any channel > 0 is the shape;
- transparency: a fully opaque alpha channel is dropped (the colour channels are read as above);
  a mask with any pixel not fully opaque is refused (the reference loader would get 4 channels);
- other modes are refused.
A mask is soft when it holds more than two distinct values (an antialiased edge); its every
non-zero pixel still counts as the shape, and the caller is told so it can warn.

Index masks (`index_mask`, VOC-style, for folders with a classes.txt) hold a class index per pixel:
0 background, i the i-th class, `IGNORED` (255) a pixel no class is scored on (an uncertain rim):
- grey masks (1, L, I, I;16*) give their value (values outside 0..255 are refused), palette masks
  their index, not its colour (VOC's masks are palette PNGs whose index 255 is the void rim);
- colour masks (RGB, RGBA, ...) are refused: a colour is no class index;
- transparency as for binary masks: a fully opaque alpha is dropped, any other is refused.
Orientation (EXIF) is not handled here: it is applied when the file is read (`decoding.open_image`).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

#: The note of an image composited over white.
COMPOSITED = "transparent pixels composited over white"
EIGHT_BIT = ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr")
SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N", "I")
ALPHA = ("RGBA", "LA", "PA")
MASK_MODES = ("1", "L", "P", "I", "I;16", "I;16L", "I;16B", "I;16N", "F", "RGB", *ALPHA)
INDEX_MODES = ("1", "L", "LA", "P", "PA", *SIXTEEN_BIT)
COLOUR_MODES = ("RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "HSV", "LAB")
GREY_HINT = "save the mask as a greyscale PNG: 0 background, >0 shape"
INDEX_HINT = (
    "save the mask as a greyscale or palette PNG of class indices: 0 background, i the i-th "
    "class of classes.txt, 255 ignored"
)
#: The index-mask value of a pixel no class is scored on.
IGNORED = 255


class PixelError(ValueError):
    """Pixels with no defined reading. `problem` names the kind, for grouping bad files (plural,
    as in "mask(s) ..."); the message says what is wrong with this one."""

    def __init__(self, problem: str, message: str) -> None:
        super().__init__(message)
        self.problem = problem


def _transparent(image: Image.Image) -> bool:
    return image.mode in ALPHA or "transparency" in image.info


def _alpha(image: Image.Image) -> np.ndarray:
    if image.mode in ALPHA:
        return np.asarray(image.getchannel("A"))
    return np.asarray(image.convert("RGBA"))[..., 3]


def _grey16(image: Image.Image) -> np.ndarray:
    """16-bit grey scaled to 0..255 (rounded), as (H, W, 3) uint8."""
    values = np.asarray(image)
    low, high = int(values.min(initial=0)), int(values.max(initial=0))
    if low < 0 or high > 65535:
        raise PixelError(
            "image(s) with no defined 8-bit reading",
            f"mode {image.mode!r} holds values {low}..{high}, outside the 16-bit range 0..65535",
        )
    grey = ((values.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1)


def viewer_rgb(image: Image.Image) -> tuple[np.ndarray, str]:
    """`image` as a viewer shows it: (H, W, 3) uint8, and a note ("" or `COMPOSITED`).

    Raises PixelError for modes with no defined 8-bit meaning (see the module docstring)."""
    if image.mode in SIXTEEN_BIT:
        return _grey16(image), ""
    if image.mode not in EIGHT_BIT:
        raise PixelError(
            "image(s) with no defined 8-bit reading",
            f"mode {image.mode!r} has no defined 8-bit reading (save it as 8- or 16-bit grey, "
            "RGB or RGBA)",
        )
    if not _transparent(image):
        return np.array(image if image.mode == "RGB" else image.convert("RGB")), ""
    rgba = np.asarray(image.convert("RGBA"))
    if (rgba[..., 3] == 255).all():
        return np.array(rgba[..., :3]), ""
    alpha = rgba[..., 3:].astype(np.uint32)
    over_white = (rgba[..., :3] * alpha + 255 * (255 - alpha) + 127) // 255
    return over_white.astype(np.uint8), COMPOSITED


def _mask_values(image: Image.Image, modes: tuple[str, ...], hint: str) -> np.ndarray:
    """The values the reference loader reads, opaque alpha dropped: (H, W) or (H, W, 3); masks
    of a mode not in `modes` or with transparency are refused, with `hint` saying what to do."""
    if image.mode not in modes:
        raise PixelError(
            f"mask(s) in a mode with no defined mask reading ({hint})",
            f"mode {image.mode!r}",
        )
    if _transparent(image):
        alpha = _alpha(image)
        if (alpha < 255).any():
            raise PixelError(
                f"mask(s) with transparency ({hint})",
                f"mode {image.mode!r}, {int((alpha < 255).sum())} of {alpha.size} pixel(s) "
                "not fully opaque",
            )
    values = np.asarray(image)
    if image.mode in ALPHA:
        values = values[..., :-1]
    return values[..., 0] if values.ndim == 3 and values.shape[-1] == 1 else values


def binary_mask(image: Image.Image) -> tuple[np.ndarray, bool]:
    """(foreground, soft): bool (H, W), True where the mask is non-zero (any channel, for RGB),
    and whether the mask holds more than two distinct values.

    Raises PixelError for masks the reference loader does not define (see the module docstring)."""
    values = _mask_values(image, MASK_MODES, GREY_HINT)
    if values.ndim == 3:
        colours = values.astype(np.uint32)
        distinct = np.unique(colours[..., 0] << 16 | colours[..., 1] << 8 | colours[..., 2])
        return values.any(axis=-1), distinct.size > 2
    return values != 0, np.unique(values).size > 2


def index_mask(image: Image.Image) -> np.ndarray:
    """uint8 (H, W): the class index of every pixel (0 background, i the i-th class, `IGNORED`).

    Raises PixelError for colour masks, transparency, values outside 0..255 and other modes (see the
    module docstring)."""
    if image.mode in COLOUR_MODES:
        raise PixelError(
            f"colour mask(s) where class indices are expected ({INDEX_HINT})",
            f"mode {image.mode!r}: a colour is not a class index",
        )
    values = _mask_values(image, INDEX_MODES, INDEX_HINT)
    low, high = int(values.min(initial=0)), int(values.max(initial=0))
    if low < 0 or high > IGNORED:
        raise PixelError(
            f"index mask(s) with values outside 0..{IGNORED} ({INDEX_HINT})",
            f"mode {image.mode!r} holds values {low}..{high}",
        )
    return values.astype(np.uint8)
