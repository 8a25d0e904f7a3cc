"""Text on pictures draws users' class names, accents included, where the system has a font
that covers them."""

from __future__ import annotations

import pytest
from PIL import ImageFont

from lit_gradcam.fonts import WIDE_FONTS, text_font


def _glyph(font: ImageFont.FreeTypeFont | ImageFont.ImageFont, text: str) -> bytes:
    mask = font.getmask(text)
    return bytes(mask) + bytes(str(mask.size), "ascii")


def test_an_accented_class_name_draws_its_own_glyphs_not_a_box() -> None:
    font = text_font(12)
    if getattr(font, "path", None) is None or not str(font.path).endswith(WIDE_FONTS):
        pytest.skip("no font of WIDE_FONTS on this system: Pillow's built-in one is used")
    unassigned = _glyph(font, "\U000f0000")  # a private-use code point: the missing-glyph box
    for character in "éßñø":
        assert _glyph(font, character) != unassigned, character
    assert font.getlength("café") > font.getlength("caf")
