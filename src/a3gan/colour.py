"""Colour transforms shared by the generator's chroma blur and the colour-noise score."""

from __future__ import annotations

#: ITU-R BT.601 RGB -> (Y, Cb, Cr) without offsets (JPEG's colour transform); rows give Y, Cb, Cr.
RGB_TO_YCBCR = (
    (0.299, 0.587, 0.114),
    (-0.168736, -0.331264, 0.5),
    (0.5, -0.418688, -0.081312),
)
