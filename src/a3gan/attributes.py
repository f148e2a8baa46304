"""The 10 facial attributes of the paper (Appendix D) and the attribute mask m (Eq. 4, Eq. 10).

A mask bit m^i = 1 means "attribute i MAY change", m^i = 0 means "attribute i must be preserved".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

#: Appendix D, in the order the paper lists them. This order defines the bit order of every mask.
ATTRIBUTES: tuple[str, ...] = (
    "Bangs",
    "Blond_Hair",
    "Brown_Hair",
    "Bushy_Eyebrows",
    "Male",
    "Mouth_Slightly_Open",
    "Mustache",
    "Narrow_Eyes",
    "Pale_Skin",
    "Young",
)

#: Presets of Appendix D (used in Fig. 4-6 and Table 5).
PRESETS: dict[str, tuple[str, ...]] = {
    "a3gan-0": (),
    "a3gan-1": ("Male",),
    "a3gan-3": ("Male", "Mustache", "Pale_Skin"),
    "a3gan-5": ("Blond_Hair", "Male", "Mustache", "Pale_Skin", "Young"),
    "a3gan-10": ATTRIBUTES,
}

#: The different A3GAN-5 used for the visual comparison of Fig. 7 ("Mouth" = Mouth_Slightly_Open).
FIG7_PRESETS: dict[str, tuple[str, ...]] = {
    "a3gan-5-fig7": ("Male", "Mouth_Slightly_Open", "Mustache", "Narrow_Eyes", "Pale_Skin"),
}


class MaskError(ValueError):
    """Raised for an attribute mask that cannot be parsed."""


def _canonical(name: str) -> str:
    return name.strip().lower().replace(" ", "_").replace("-", "_")


_BY_CANON = {_canonical(a): a for a in ATTRIBUTES}


def mask_from_names(names: Iterable[str], attributes: Sequence[str] = ATTRIBUTES) -> list[int]:
    """``["Male", "Young"]`` -> bit list. Names are matched case-insensitively, ``-``/space == ``_``."""
    canon = {_canonical(a): i for i, a in enumerate(attributes)}
    bits = [0] * len(attributes)
    for raw in names:
        if not raw.strip():
            continue
        key = _canonical(raw)
        if key not in canon:
            raise MaskError(f"unknown attribute {raw.strip()!r}; valid names: {', '.join(attributes)}")
        bits[canon[key]] = 1
    return bits


def parse_mask(spec: str | Sequence[int] | None, attributes: Sequence[str] = ATTRIBUTES) -> list[int]:
    """Parse an attribute mask from any of the accepted spellings.

    - ``None`` or ``""`` or ``"none"``: change nothing (A3GAN-0)
    - a preset name: ``"a3gan-5"`` (also ``"A3GAN-5"``, ``"a3gan5"``), or ``"all"``
    - a bit string of length N: ``"0000100001"`` (bit i is ``attributes[i]``)
    - comma-separated attribute names: ``"Male,Young"``
    - a sequence of 0/1 integers
    """
    n = len(attributes)
    if spec is None:
        return [0] * n
    if not isinstance(spec, str):
        bits = [int(b) for b in spec]
        if len(bits) != n or any(b not in (0, 1) for b in bits):
            raise MaskError(f"a mask needs {n} bits of 0/1, got {list(spec)!r}")
        return bits
    s = spec.strip()
    low = s.lower().replace("_", "-").replace(" ", "")
    if low in ("", "none"):
        return [0] * n
    if low == "all":
        return [1] * n
    preset = low if low in PRESETS or low in FIG7_PRESETS else low.replace("a3gan", "a3gan-", 1)
    if preset in PRESETS or preset in FIG7_PRESETS:
        names = {**PRESETS, **FIG7_PRESETS}[preset]
        return mask_from_names(names, attributes)
    if set(s) <= {"0", "1"}:
        if len(s) != n:
            raise MaskError(f"a bit-string mask needs exactly {n} bits (one per attribute), got {len(s)}: {s!r}")
        return [int(c) for c in s]
    return mask_from_names(s.split(","), attributes)


def mask_names(bits: Sequence[int], attributes: Sequence[str] = ATTRIBUTES) -> list[str]:
    return [a for a, b in zip(attributes, bits, strict=True) if b]


def mask_tensor(spec: str | Sequence[int] | None, batch: int = 1, device: str | torch.device = "cpu") -> torch.Tensor:
    """A float tensor (batch, N) of the parsed mask."""
    bits = parse_mask(spec)
    return torch.tensor(bits, dtype=torch.float32, device=device).unsqueeze(0).expand(batch, -1).contiguous()


def xnor(a_s: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Eq. 10: a_m = xnor(a_s, m), element-wise on {0,1} tensors. xnor(a, b) = 1 iff a == b.

    m = 1 (may change)  -> a_m = a_s        (L_att2 then pushes D_att(I_hat) away from a_s)
    m = 0 (preserve)    -> a_m = 1 - a_s    (L_att2 then pushes D_att(I_hat) away from 1 - a_s, i.e. to a_s)
    """
    return a_s * m + (1 - a_s) * (1 - m)
