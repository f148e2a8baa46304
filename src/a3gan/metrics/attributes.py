"""Controllability: an attribute classifier for EVALUATION ONLY, and attribute preservation / change rates.

The paper controls 10 attributes (Appendix D) with the attribute mask m. Whether an attribute was preserved
(m^i = 0) or changed (m^i = 1) must be judged by a model that played no part in training: not the GAN's
discriminator D_att. :class:`AttributeNet` is a small CNN (4 strided 3x3 conv + BN + ReLU, global average pool,
linear) on 64x64 face crops (the STGAN crop of :mod:`a3gan.geometry`), trained with binary cross-entropy on
CelebA images of identities DISJOINT from the evaluated ones (the caller passes the two sets; see
:func:`identity_split`). Its own accuracy per attribute on the held-out identities is reported next to every rate.

- preservation rate of attribute i: share of faces whose predicted attribute i is the same before and after;
- change rate: 1 - preservation rate. For m^i = 1 a HIGH change rate is the intended behaviour.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from a3gan.errors import InputError, ModelError

RESOLUTION = 64


def identity_split(labels: Sequence[object], eval_labels: set[object]) -> np.ndarray:
    """Boolean mask of the images whose identity is NOT an evaluation identity (= the classifier's training set)."""
    return np.asarray([lab not in eval_labels for lab in labels], dtype=bool)


def _net(n_attrs: int, width: int = 16):  # noqa: ANN202
    import torch.nn as nn

    layers: list[nn.Module] = []
    c_in = 3
    for c in (width, width * 2, width * 4, width * 8):
        layers += [nn.Conv2d(c_in, c, 3, 2, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
        c_in = c
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(c_in, n_attrs)]
    return nn.Sequential(*layers)


class AttributeNet:
    """The evaluation attribute classifier: ``predict(images_uint8) -> (N, n_attrs)`` 0/1."""

    def __init__(self, attributes: Sequence[str], width: int = 16, meta: dict | None = None) -> None:
        self.attributes = tuple(attributes)
        self.width = int(width)
        self.model = _net(len(self.attributes), self.width)
        self.meta: dict = dict(meta or {})

    @staticmethod
    def to_tensor(images: np.ndarray):  # noqa: ANN205
        """(N, H, W, 3) uint8 -> (N, 3, 64, 64) float in [-1, 1] (resized with antialiasing when H != 64)."""
        import torch
        import torch.nn.functional as F

        a = np.asarray(images)
        if a.ndim != 4 or a.shape[-1] != 3:
            raise InputError(f"expected (N, H, W, 3) images, got shape {a.shape}")
        x = torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        if x.shape[-1] != RESOLUTION or x.shape[-2] != RESOLUTION:
            x = F.interpolate(
                x, size=(RESOLUTION, RESOLUTION), mode="bilinear", antialias=True, align_corners=False
            )
        return x

    def logits(self, images: np.ndarray, batch: int = 256) -> np.ndarray:
        import torch

        self.model.eval()
        out = []
        with torch.no_grad():
            for i in range(0, len(images), batch):
                out.append(self.model(self.to_tensor(images[i : i + batch])).numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.attributes)), np.float32)

    def predict(self, images: np.ndarray) -> np.ndarray:
        return (self.logits(images) > 0).astype(np.uint8)

    def fit(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        epochs: int = 4,
        batch: int = 64,
        lr: float = 2e-3,
        seed: int = 0,
        progress: Callable[[int, int], None] | None = None,
    ) -> dict[str, float]:
        """Train with BCE + Adam (one-cycle cosine LR), random horizontal flips. Returns training stats."""
        import torch
        import torch.nn.functional as F

        x_all = np.asarray(images)
        y_all = np.asarray(labels, dtype=np.float32)
        if len(x_all) != len(y_all) or y_all.ndim != 2 or y_all.shape[1] != len(self.attributes):
            raise InputError(f"labels must be (N, {len(self.attributes)}) for N images")
        if len(x_all) < batch:
            raise InputError(
                f"need at least {batch} training images for the attribute classifier, got {len(x_all)}"
            )
        g = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        self.model = _net(len(self.attributes), self.width)
        x_t = self.to_tensor(x_all)  # resized once
        y_t = torch.from_numpy(y_all)
        # partly balance each attribute's loss by its positive rate (CelebA attributes are very unbalanced)
        pos = y_t.mean(0).clamp(0.02, 0.98)
        pos_weight = ((1 - pos) / pos).sqrt()
        steps = epochs * (len(x_t) // batch)
        opt = torch.optim.Adam(self.model.parameters(), lr=lr)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.2)
        self.model.train()
        t0, c0, step, loss_v = time.time(), time.process_time(), 0, float("nan")
        for _ in range(epochs):
            perm = torch.randperm(len(x_t), generator=g)
            for i in range(0, len(perm) - batch + 1, batch):
                idx = perm[i : i + batch]
                xb = x_t[idx]
                flip = torch.rand(len(idx), generator=g) < 0.5
                xb = torch.where(flip[:, None, None, None], xb.flip(-1), xb)
                loss = F.binary_cross_entropy_with_logits(self.model(xb), y_t[idx], pos_weight=pos_weight)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                step += 1
                loss_v = float(loss.detach())
                if progress:
                    progress(step, steps)
        self.model.eval()
        return {
            "steps": step,
            "final_loss": loss_v,
            "seconds": time.time() - t0,
            "cpu_seconds": time.process_time() - c0,
            "n_train": len(x_t),
        }

    def save(self, path: str | Path) -> None:
        from safetensors.torch import save_file

        meta = {
            "attributes": json.dumps(self.attributes),
            "width": str(self.width),
            "meta": json.dumps(self.meta),
        }
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        sd = {k: v.contiguous() for k, v in self.model.state_dict().items()}
        save_file(sd, str(path), metadata=meta)

    @classmethod
    def load(cls, path: str | Path) -> AttributeNet:
        from safetensors import SafetensorError, safe_open
        from safetensors.torch import load_file

        p = Path(path)
        if not p.is_file():
            raise ModelError(f"attribute classifier not found: {p}")
        try:
            with safe_open(str(p), framework="pt") as f:
                md = f.metadata() or {}
            sd = load_file(str(p))
            net = cls(json.loads(md["attributes"]), int(md["width"]), json.loads(md.get("meta", "{}")))
            net.model.load_state_dict(sd)
        except (SafetensorError, KeyError, ValueError, RuntimeError, OSError) as e:
            raise ModelError(f"{p}: not an a3gan attribute classifier ({e.__class__.__name__})") from None
        net.model.eval()
        return net


def per_attribute_accuracy(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Share of correct 0/1 predictions per attribute (column)."""
    p, t = np.asarray(pred), np.asarray(truth)
    if p.shape != t.shape or p.ndim != 2 or len(p) == 0:
        raise InputError(
            f"prediction and truth must be equal, non-empty (N, K) arrays, got {p.shape}, {t.shape}"
        )
    return np.mean(p.astype(bool) == t.astype(bool), axis=0)


def balanced_accuracy(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per attribute: mean of the true-positive and true-negative rates (NaN-safe for a missing class)."""
    p, t = np.asarray(pred).astype(bool), np.asarray(truth).astype(bool)
    with np.errstate(invalid="ignore", divide="ignore"):
        tpr = (p & t).sum(0) / t.sum(0)
        tnr = (~p & ~t).sum(0) / (~t).sum(0)
    return np.nanmean(np.stack([tpr, tnr]), axis=0)


def preservation(pred_orig: np.ndarray, pred_anon: np.ndarray, mask: Sequence[int]) -> dict[str, object]:
    """Per-attribute preservation and change rates, and their means over preserved (m=0) and free (m=1) bits.

    ``preserved_mean``: mean preservation over attributes with m^i = 0 (should be high);
    ``changed_mean``: mean change rate over attributes with m^i = 1 (NaN when m is all zeros).
    """
    po, pa = np.asarray(pred_orig).astype(bool), np.asarray(pred_anon).astype(bool)
    m = np.asarray(mask, dtype=bool)
    if po.shape != pa.shape or po.ndim != 2 or po.shape[1] != m.size or len(po) == 0:
        raise InputError(
            f"preservation needs two equal (N, {m.size}) predictions, got {po.shape} and {pa.shape}"
        )
    keep = np.mean(po == pa, axis=0)
    return {
        "preservation": keep.tolist(),
        "change": (1 - keep).tolist(),
        "preserved_mean": float(keep[~m].mean()) if (~m).any() else float("nan"),
        "changed_mean": float((1 - keep[m]).mean()) if m.any() else float("nan"),
    }
