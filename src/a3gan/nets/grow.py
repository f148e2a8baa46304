"""Widen a trained generator/discriminator to more channels without changing what it computes (not in paper).

``train.init_from`` uses this when the file's model is the run's model at a smaller ``model.width`` /
``model.ainet_width`` (everything else equal): the run starts from the trained nets, grown. It is Net2Net's
"wider" operation (Chen et al., "Net2Net: Accelerating Learning via Knowledge Transfer", ICLR 2016) in its
zero-output form:

- every old weight keeps its value and its place (per concatenated segment: a decoder input
  [D(k) output, F̂^l], the SCU gate input [F^l, W_T F̂^{l+1}], AffNet's output [f_a,s | f_a,b], ...);
- a new channel (a new row of a layer's output) keeps its fresh random initialisation, so it computes something
  and can learn;
- every weight that reads a new channel (a new input column) is zero, so nothing downstream sees the new channels
  at first, and the grown network's output equals the old one's exactly (up to float rounding; BatchNorm and
  InstanceNorm are per channel, AdaIN is per channel).

Gradients reach the zero columns at once (their gradient is the new channel's activation times the gradient
downstream), and through them the new channels' own weights, so the new capacity joins training from step 1.
"""

from __future__ import annotations

import itertools
import re

import torch

from a3gan.config import ModelConfig
from a3gan.nets.ainet import fcnet_dims

WIDTH_KEYS = ("width", "ainet_width")


def growable(src: ModelConfig, dst: ModelConfig) -> bool:
    """True when ``dst`` is ``src`` with ``width`` / ``ainet_width`` at least as large (and one of them larger)."""
    a, b = src.__dict__, dst.__dict__
    same_rest = all(a[k] == b[k] for k in a if k not in WIDTH_KEYS)
    wider = all(b[k] >= a[k] for k in WIDTH_KEYS) and any(b[k] > a[k] for k in WIDTH_KEYS)
    return same_rest and wider


def _generator_layout(name: str, cfg: ModelConfig) -> tuple[list[int], list[int] | None] | None:
    """(output segments, input segments or None) of a generator parameter, or None for a scalar buffer.

    Segments are the sizes of the channel groups along the output (dim 0 of a Conv2d/Linear weight, of a bias or
    a norm's vector) and input axes (dim 1; the axes are swapped for a ConvTranspose2d weight, see
    :func:`widen_state_dict`)."""
    L = cfg.n_layers
    enc = [cfg.ch(64 * 2**i) for i in range(L)]
    fc = fcnet_dims(cfg.z_dim, cfg.n_attrs, cfg.ainet_width, cfg.use_mask)
    fc_out = fc[-1]
    if name.endswith("num_batches_tracked"):
        return None
    if m := re.match(r"encoder\.(\d+)\.(\d+)\.", name):
        i, part = int(m[1]), int(m[2])
        return [enc[i]], ([3] if i == 0 else [enc[i - 1]]) if part == 0 else None
    if m := re.match(r"skips\.(\d+)\.(\w+)\.", name):
        l, unit = int(m[1]), m[2]
        if unit == "w_t":  # SCU W_T: F̂^{l+1} -> C_l
            return [enc[l]], [enc[l + 1]]
        if unit == "deconv":  # STU: [s^{l+1}, m] -> C_l
            return [enc[l]], [enc[l + 1], cfg.n_attrs]
        return [enc[l]], [enc[l], enc[l]]  # w_f, w_r, w_z, w_h read [F^l, ·]
    if m := re.match(r"ainet\.fcnet\.net\.(\d+)\.", name):
        k = int(m[1]) // 2
        return [fc[k + 1]], [fc[k]]
    if name.startswith("ainet.affnet."):
        return [enc[-1], enc[-1]], [fc_out]  # [f_a,s | f_a,b]
    if m := re.match(r"decoder\.(\d+)\.(\d+)\.", name):
        k, part = int(m[1]), int(m[2])
        if k == 0:
            cin = [enc[-1]] + ([fc_out] if cfg.inject == "concat" else [])
            return [enc[-1]], cin if part == 0 else None
        cin = [enc[L - k], enc[L - 1 - k]]  # [D(k) output, F̂^{L-k}]
        cout = enc[L - 1 - k] if k < L - 1 else 3
        return [cout], cin if part == 0 else None
    raise ValueError(f"widen: no channel layout for generator parameter {name!r}")


def _discriminator_layout(name: str, cfg: ModelConfig) -> tuple[list[int], list[int] | None] | None:
    ch = [cfg.ch(64 * 2**i) for i in range(cfg.n_layers)]
    if m := re.match(r"trunk\.(\d+)\.", name):
        idx = int(m[1])
        i, part = divmod(idx, 3)
        if part == 0:
            return [ch[i]], [3] if i == 0 else [ch[i - 1]]
        return [ch[i]], None  # InstanceNorm affine
    if m := re.match(r"(cls|att)_head\.(\d+)\.", name):
        if int(m[2]) == 0:  # reads the flattened trunk, channel-major: C_5 groups of (R/32)^2 values
            return [max(8, round(cfg.d_fc))], [ch[-1]]
        return None  # the second FC does not change with width
    raise ValueError(f"widen: no channel layout for discriminator parameter {name!r}")


def _offsets(segs: list[int]) -> list[int]:
    return list(itertools.accumulate([0] + segs[:-1]))


def widen_state_dict(
    src: dict[str, torch.Tensor],
    src_cfg: ModelConfig,
    dst: dict[str, torch.Tensor],
    dst_cfg: ModelConfig,
    net: str,
) -> dict[str, torch.Tensor]:
    """Grow the state dict ``src`` of a ``net`` ("G" or "D") built with ``src_cfg`` into the shapes of ``dst`` (a
    freshly initialised state dict of the same net built with ``dst_cfg``). Returns a new dict; see the module
    docstring for what is kept, what stays random and what is zeroed."""
    if net not in ("G", "D"):
        raise ValueError(f"widen: net must be 'G' or 'D', got {net!r}")
    if not growable(src_cfg, dst_cfg):
        raise ValueError("widen: the target config must equal the source's except for a larger width/ainet_width")
    layout = _generator_layout if net == "G" else _discriminator_layout
    if set(src) != set(dst):
        missing = sorted(set(dst) ^ set(src))[:3]
        raise ValueError(f"widen: the {net} state dicts name different tensors ({', '.join(missing)} ...)")
    out: dict[str, torch.Tensor] = {}
    for name, fresh in dst.items():
        old = src[name]
        if old.shape == fresh.shape:
            out[name] = old.clone()
            continue
        lo, ld = layout(name, src_cfg), layout(name, dst_cfg)
        if lo is None or ld is None:
            raise ValueError(f"widen: {net}.{name} changes shape but has no channel layout")
        (out_o, in_o), (out_d, in_d) = lo, ld
        buf = fresh.clone()
        new, old_v = buf, old  # views of both, with output channels on dim 0 and input channels on dim 1
        if old.dim() == 4 and _is_transposed(name, net, src_cfg):  # ConvTranspose2d weight: (in, out, k, k)
            new, old_v = buf.transpose(0, 1), old.transpose(0, 1)
        elif in_d is not None and buf.dim() == 2 and buf.shape[1] != sum(in_d):
            # D's head: the input is the flattened trunk, channel-major (C_5, (R/32)^2)
            new = buf.view(buf.shape[0], sum(in_d), -1)
            old_v = old.view(old.shape[0], sum(in_o), -1)
        if new.shape[0] != sum(out_d) or old_v.shape[0] != sum(out_o):
            raise ValueError(f"widen: {net}.{name} shape {tuple(old.shape)} does not match its channel layout")
        has_in = in_o is not None and new.dim() >= 2
        if has_in and (new.shape[1] != sum(in_d) or old_v.shape[1] != sum(in_o)):
            raise ValueError(f"widen: {net}.{name} shape {tuple(old.shape)} does not match its channel layout")
        for so, sd_, lo_ in zip(_offsets(out_o), _offsets(out_d), out_o, strict=True):
            rows_d, rows_o = slice(sd_, sd_ + lo_), slice(so, so + lo_)
            if not has_in:
                new[rows_d] = old_v[rows_o]
                continue
            for si, di, li in zip(_offsets(in_o), _offsets(in_d), in_o, strict=True):
                new[rows_d, di : di + li] = old_v[rows_o, si : si + li]
        if has_in:  # zero every weight that reads a new input channel (all output rows, old and new)
            for di, li, lid in zip(_offsets(in_d), in_o, in_d, strict=True):
                new[:, di + li : di + lid] = 0
        out[name] = buf
    return out


def _is_transposed(name: str, net: str, cfg: ModelConfig) -> bool:
    """True for ConvTranspose2d weights (the generator's upconv in ``deconv`` mode)."""
    if net != "G":
        return False
    if name.startswith("encoder.") or re.match(r"skips\.\d+\.w_[frzh]\.", name):
        return False
    mode = cfg.upsample
    if name.startswith(f"decoder.{cfg.n_layers - 1}."):
        mode = cfg.upsample_last or cfg.upsample
    return mode == "deconv"
