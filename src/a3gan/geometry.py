"""The one face-crop geometry shared by training data, the photo pipeline and the identity networks.

We use the STGAN crop of CelebA's aligned images: a 170x170 square whose top-left corner is at (x=3, y=26) of the
178x218 aligned image, resized to the model resolution. It scales with the image, so the 89x109 subset uses an
85x85 square at (1.5, 13). The full-photo pipeline aligns detected faces to exactly this square
(see ``a3gan.pipeline.align``), so the model sees at inference what it saw in training.
"""

from __future__ import annotations

CELEBA_ALIGNED_SIZE = (178, 218)  # (width, height) of CelebA's img_align_celeba
CROP_XY = (3.0, 26.0)  # STGAN: tf.image.crop_to_bounding_box(img, 26, 3, 170, 170)
CROP_SIZE = 170.0


def celeba_crop_box(width: int, height: int) -> tuple[float, float, float, float]:
    """(left, top, right, bottom) of the crop in an aligned CelebA image of the given size (float pixels)."""
    sx = width / CELEBA_ALIGNED_SIZE[0]
    sy = height / CELEBA_ALIGNED_SIZE[1]
    if abs(sx - sy) > 0.02:
        raise ValueError(
            f"image of size {width}x{height} is not a scaled CelebA aligned image (aspect {width / height:.3f}, "
            f"expected {CELEBA_ALIGNED_SIZE[0] / CELEBA_ALIGNED_SIZE[1]:.3f})"
        )
    return (CROP_XY[0] * sx, CROP_XY[1] * sy, (CROP_XY[0] + CROP_SIZE) * sx, (CROP_XY[1] + CROP_SIZE) * sy)
