"""Fréchet distance and FID (Heusel et al. 2017; the paper's Table 1 / Table 5 "FID").

:func:`frechet_distance` is the closed form between two Gaussians,
``d^2 = |mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))``, with the usual numerical fixes of pytorch-fid.

:class:`FIDScorer` is FID itself through torchmetrics' ``FrechetInceptionDistance`` and torch-fidelity's
TF-compatible Inception-v3 (the "pt_inception-2015-12-05" weights). Weights are NEVER downloaded: the user passes
them by path (``--inception PATH``, a ``.pth``/``.pt`` state dict or a ``.safetensors`` file). Without weights the
evaluation reports :data:`FID_NA`, never a number.
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
import types
import warnings
from pathlib import Path

import numpy as np

from a3gan.errors import InputError, ModelError

FID_NA = "n/a (weights unavailable)"


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6
) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2).

    Fixes as in pytorch-fid: when ``sqrtm(S1 S2)`` is singular (non-finite), ``eps * I`` is added to both
    covariances; a small imaginary part from round-off is dropped, a large one raises.
    """
    from scipy import linalg

    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or mu1.ndim != 1:
        raise InputError(f"mean vectors must be 1-D of equal length, got {mu1.shape} and {mu2.shape}")
    d = mu1.shape[0]
    if s1.shape != (d, d) or s2.shape != (d, d):
        raise InputError(f"covariances must be {d}x{d}, got {s1.shape} and {s2.shape}")
    diff = mu1 - mu2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)  # a singular product is handled just below
        covmean = linalg.sqrtm(s1.dot(s2))
    if not np.isfinite(covmean).all():
        offset = np.eye(d) * eps
        covmean = linalg.sqrtm((s1 + offset).dot(s2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"sqrtm has a large imaginary component {np.max(np.abs(covmean.imag)):.3g}")
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) covariance of (N, D) features, N >= 2."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise InputError(f"need at least 2 feature vectors of shape (N, D), got {f.shape}")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def _import_torch_fidelity_inception() -> None:
    """Import torch-fidelity's Inception module.

    torch-fidelity's package ``__init__`` imports every feature extractor, some of which import torchvision; a
    torchvision wheel that does not match the installed torch (e.g. CUDA torchvision next to CPU torch) makes that
    import fail although the Inception extractor does not use torchvision. In that case the package is
    registered as a bare namespace so only the modules FID needs are imported.
    """
    try:
        import torch_fidelity.feature_extractor_inceptionv3  # noqa: F401

        return
    except ImportError as e:
        if importlib.util.find_spec("torch_fidelity") is None:
            raise ModelError(
                "FID needs torchmetrics and torch-fidelity: pip install torchmetrics==1.9.0 torch-fidelity==0.4.0"
            ) from e
    except Exception:  # torchvision operator registration errors are RuntimeError
        pass
    spec = importlib.util.find_spec("torch_fidelity")
    assert spec is not None and spec.submodule_search_locations is not None
    for name in [m for m in sys.modules if m == "torch_fidelity" or m.startswith("torch_fidelity.")]:
        del sys.modules[name]
    pkg = types.ModuleType("torch_fidelity")
    pkg.__path__ = list(spec.submodule_search_locations)
    sys.modules["torch_fidelity"] = pkg
    import torch_fidelity.feature_extractor_inceptionv3  # noqa: F401,F811


def load_inception_state_dict(path: str | Path) -> dict:
    """Read Inception weights safely: safetensors, or a torch state dict with ``weights_only=True``."""
    import torch

    from a3gan.checkpoint import load_weights_file

    p = Path(path)
    sd = load_weights_file(p, "Inception")
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ModelError(f"{p}: not a state dict of tensors")
    return sd


class FIDScorer:
    """FID between original and anonymized images via torchmetrics (torch-fidelity Inception-v3, 2048-D pool3).

    ``update(images_uint8_hwc, real=...)`` accepts a list of HxWx3 uint8 arrays (resized to 299 inside, as in
    the TF reference). FID is biased upwards for small N (the covariance is 2048x2048); report ``n_real`` and
    ``n_fake`` next to it.
    """

    def __init__(self, weights: str | Path, device: str = "cpu") -> None:
        import torch

        sd = load_inception_state_dict(weights)
        _import_torch_fidelity_inception()
        from torchmetrics.image.fid import FrechetInceptionDistance

        # torch-fidelity reads weights with torch.load(weights_only=False); give it only the tensors we have just
        # read safely, re-saved to a private temporary file.
        with tempfile.TemporaryDirectory() as tmp:
            safe = Path(tmp) / "inception.pt"
            torch.save({k: v.contiguous() for k, v in sd.items()}, safe)
            try:
                self.metric = FrechetInceptionDistance(
                    feature=2048, normalize=False, feature_extractor_weights_path=str(safe)
                )
            except RuntimeError as e:
                raise ModelError(
                    f"{weights}: not torch-fidelity Inception-v3 weights ({str(e).splitlines()[0][:120]})"
                ) from None
        self.metric = self.metric.to(device)
        self.device = device
        self.n_real = 0
        self.n_fake = 0

    def update(self, images: list[np.ndarray], real: bool) -> None:
        import torch

        if not images:
            return
        x = torch.from_numpy(np.stack([np.asarray(i, dtype=np.uint8) for i in images])).permute(0, 3, 1, 2)
        self.metric.update(x.to(self.device), real=real)
        if real:
            self.n_real += len(images)
        else:
            self.n_fake += len(images)

    def compute(self) -> float:
        if self.n_real < 2 or self.n_fake < 2:
            raise InputError("FID needs at least 2 real and 2 anonymized images")
        return float(self.metric.compute())

    def reset_fake(self) -> None:
        """Keep the real statistics, forget the anonymized ones (one FID per method)."""
        m = self.metric
        m.fake_features_sum.zero_()
        m.fake_features_cov_sum.zero_()
        m.fake_features_num_samples.zero_()
        m._computed = None  # torchmetrics caches the last compute()
        self.n_fake = 0
