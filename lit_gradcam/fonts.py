"""The font of text drawn on pictures (legends, charts): one that draws users' class names.

Pillow's built-in font covers ASCII only, so a class called "café" or "Straße" would show a box
in its legend. A common font with wide Unicode coverage is taken where the system has one (Pillow
finds these by file name in the system's font folders), and the built-in font otherwise.
"""

from __future__ import annotations

from functools import lru_cache

from PIL import ImageFont

#: Tried in order: DejaVu (most Linux systems), Noto, then macOS's and Windows' Arial.
WIDE_FONTS = ("DejaVuSans.ttf", "NotoSans-Regular.ttf", "Arial Unicode.ttf", "arial.ttf")


@lru_cache(maxsize=8)
def text_font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """The first of WIDE_FONTS the system has, at `size` px; Pillow's built-in font if none."""
    for name in WIDE_FONTS:
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)
