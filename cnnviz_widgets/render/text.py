"""Text on pictures: the one font, and a heading over a picture.

The font is loaded once, on first use, by a cached function (no module-level state to
set or reset): Pillow's built-in bitmap font, which needs no font file and so draws the
same on a laptop, Binder, Colab and the site build.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .arrays import to_uint8

__all__ = ["label_font", "with_heading"]


@lru_cache(maxsize=1)
def label_font() -> ImageFont.ImageFont:
    """The font labels and headings are written in (Pillow's default), loaded once."""
    return ImageFont.load_default()


def with_heading(picture: np.ndarray, text: str, height: int = 16) -> np.ndarray:
    """A picture under a one-line heading on white."""
    strip = Image.new("RGB", (picture.shape[1], height), (255, 255, 255))
    ImageDraw.Draw(strip).text((4, 2), text, fill=(0, 0, 0), font=label_font())
    return np.concatenate([np.asarray(strip), to_uint8(picture)], axis=0)
