"""BRISQUE no-reference image quality (Mittal et al. 2012; the paper's Table 5 "BRISQUE", lower is better).

Why not ``brisque.BRISQUE().score`` directly: brisque 0.2.0 divides sums by ``array.shape`` (a tuple) in its AGGD
fit, so every feature is a 1-element array, and its ``float(feature)`` then raises on NumPy >= 2.4 ("only
0-dimensional arrays can be converted to Python scalars"); it also needs the libsvm C extension just to evaluate
an RBF SVR. We compute the same 36 features here (MSCN coefficients, AGGD fits of the MSCN map and of its four
pairwise products, at full and half scale) and evaluate the package's shipped SVR model (``models/svm.txt``,
LIVE-trained, Apache-2.0 package) and its feature range scaling (``models/normalize.pickle``) in NumPy. The model
files are located with importlib without importing the package.
"""

from __future__ import annotations

import functools
import importlib.util
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage, optimize, special

from a3gan.errors import InputError, ModelError

N_FEATURES = 36


def gaussian_kernel2d(n: int = 7, sigma: float = 7 / 6) -> np.ndarray:
    """Normalised n x n Gaussian window (BRISQUE uses 7x7, sigma 7/6)."""
    y, x = np.indices((n, n)) - n // 2
    k = np.exp(-(x**2 + y**2) / (2 * sigma**2))
    return k / k.sum()


def to_gray(image: np.ndarray) -> np.ndarray:
    """HxW or HxWx3/4 uint8 (0..255) or float (0..1) -> float64 gray in [0, 1] (ITU-R 709 luma, as skimage)."""
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] == 4:
        a = a[..., :3]
    if a.ndim == 3 and a.shape[2] == 3:
        a = a.astype(np.float64)
        if np.issubdtype(np.asarray(image).dtype, np.integer):
            a = a / 255.0
        return a @ np.array([0.2125, 0.7154, 0.0721])
    if a.ndim == 2:
        f = a.astype(np.float64)
        return f / 255.0 if np.issubdtype(a.dtype, np.integer) else f
    raise InputError(f"BRISQUE needs an HxW or HxWx3 image, got shape {a.shape}")


def mscn(gray: np.ndarray, kernel_size: int = 7, sigma: float = 7 / 6, c: float = 1 / 255) -> np.ndarray:
    """Mean-subtracted contrast-normalised coefficients (I - mu) / (sigma + C), zero padding at the borders."""
    k = gaussian_kernel2d(kernel_size, sigma)
    mu = ndimage.convolve(gray, k, mode="constant", cval=0.0)
    var = ndimage.convolve(gray * gray, k, mode="constant", cval=0.0)
    sd = np.sqrt(np.abs(mu * mu - var))
    return (gray - mu) / (sd + c)


def pair_products(m: np.ndarray) -> list[np.ndarray]:
    """Products of neighbouring MSCN coefficients: horizontal, vertical, main and secondary diagonal."""
    return [m[:, :-1] * m[:, 1:], m[:-1, :] * m[1:, :], m[:-1, :-1] * m[1:, 1:], m[1:, :-1] * m[:-1, 1:]]


def _phi(alpha: float) -> float:
    """Gamma(2/a)^2 / (Gamma(1/a) Gamma(3/a)), increasing in a from 0 to 3/4."""
    return float(
        np.exp(2 * special.gammaln(2 / alpha) - special.gammaln(1 / alpha) - special.gammaln(3 / alpha))
    )


def _solve_shape(ratio: float, lo: float = 0.05, hi: float = 50.0) -> float:
    """The shape a with _phi(a) == ratio (clamped to [lo, hi])."""
    if not np.isfinite(ratio):
        raise InputError("BRISQUE: the image has no contrast (constant region), its quality is undefined")
    if ratio <= _phi(lo):
        return lo
    if ratio >= _phi(hi):
        return hi
    return float(optimize.brentq(lambda a: _phi(a) - ratio, lo, hi, xtol=1e-10))


def ggd_fit(x: np.ndarray) -> tuple[float, float]:
    """Zero-mean generalised Gaussian fit by moment matching: (shape alpha, variance). Gaussian data -> alpha 2."""
    x = np.asarray(x, dtype=np.float64).ravel()
    m2 = np.mean(x * x)
    if m2 <= 0:
        raise InputError("BRISQUE: the image has no contrast (constant region), its quality is undefined")
    return _solve_shape(np.mean(np.abs(x)) ** 2 / m2), float(m2)


def aggd_fit(x: np.ndarray) -> tuple[float, float, float, float]:
    """Asymmetric GGD fit (Lasmar et al.): (alpha, mean, sigma_l^2, sigma_r^2), as in BRISQUE's reference code."""
    x = np.asarray(x, dtype=np.float64).ravel()
    left, right = x[x < 0], x[x >= 0]
    if left.size == 0 or right.size == 0:
        raise InputError("BRISQUE: the image has no contrast (constant region), its quality is undefined")
    sl2, sr2 = float(np.mean(left * left)), float(np.mean(right * right))
    if sl2 <= 0 or sr2 <= 0:
        raise InputError("BRISQUE: the image has no contrast (constant region), its quality is undefined")
    gamma = np.sqrt(sl2) / np.sqrt(sr2)
    r_hat = np.mean(np.abs(x)) ** 2 / np.mean(x * x)
    big_r = r_hat * (gamma**3 + 1) * (gamma + 1) / (gamma**2 + 1) ** 2
    alpha = _solve_shape(big_r)
    const = np.exp(0.5 * (special.gammaln(1 / alpha) - special.gammaln(3 / alpha)))
    mean = (
        (np.sqrt(sr2) - np.sqrt(sl2))
        * const
        * np.exp(special.gammaln(2 / alpha) - special.gammaln(1 / alpha))
    )
    return alpha, float(mean), sl2, sr2


def scale_features(gray: np.ndarray) -> np.ndarray:
    """The 18 features of one scale: MSCN (alpha, variance) and 4 x pair products (alpha, mean, sl^2, sr^2)."""
    m = mscn(gray)
    a, _, sl2, sr2 = aggd_fit(m)
    feats = [a, (sl2 + sr2) / 2]
    for p in pair_products(m):
        feats.extend(aggd_fit(p))
    return np.asarray(feats, dtype=np.float64)


def brisque_features(image: np.ndarray) -> np.ndarray:
    """The 36 BRISQUE features: 18 at full scale and 18 at half scale (bicubic, as the shipped model's trainer)."""
    import cv2

    gray = to_gray(image)
    if min(gray.shape) < 16:
        raise InputError(
            f"BRISQUE needs an image of at least 16x16 pixels, got {gray.shape[1]}x{gray.shape[0]}"
        )
    half = cv2.resize(gray, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_CUBIC)
    return np.concatenate([scale_features(gray), scale_features(half)])


class _NoGlobals(pickle.Unpickler):
    """Unpickles plain containers and numbers only; any class or function reference is refused."""

    def find_class(self, module: str, name: str):  # noqa: ANN201
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


@dataclass(frozen=True)
class SVRModel:
    """An RBF epsilon-SVR: f(x) = sum_i coef_i exp(-gamma |x - sv_i|^2) - rho, on range-scaled features."""

    sv: np.ndarray  # (n_sv, 36)
    coef: np.ndarray  # (n_sv,)
    gamma: float
    rho: float
    feat_min: np.ndarray  # (36,)
    feat_max: np.ndarray  # (36,)

    def scale(self, feats: np.ndarray) -> np.ndarray:
        """Map each feature's training range [min, max] to [-1, 1] (libsvm's svm-scale)."""
        return -1.0 + 2.0 * (feats - self.feat_min) / (self.feat_max - self.feat_min)

    def predict(self, feats: np.ndarray) -> np.ndarray:
        x = np.atleast_2d(self.scale(np.asarray(feats, np.float64)))
        d2 = np.sum(x * x, 1)[:, None] + np.sum(self.sv * self.sv, 1)[None, :] - 2 * x @ self.sv.T
        return np.exp(-self.gamma * np.maximum(d2, 0.0)) @ self.coef - self.rho


def parse_libsvm_model(
    text: str, n_features: int = N_FEATURES
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Parse a libsvm text model of an RBF SVR: (support vectors, coefficients, gamma, rho)."""
    lines = text.splitlines()
    header: dict[str, str] = {}
    i = 0
    while i < len(lines) and lines[i].strip() != "SV":
        k, _, v = lines[i].strip().partition(" ")
        header[k] = v
        i += 1
    if header.get("kernel_type") != "rbf" or "gamma" not in header or "rho" not in header:
        raise ModelError("BRISQUE model: expected an RBF libsvm model with gamma and rho")
    sv, coef = [], []
    for line in lines[i + 1 :]:
        parts = line.split()
        if not parts:
            continue
        coef.append(float(parts[0]))
        row = np.zeros(n_features)
        for p in parts[1:]:
            j, _, v = p.partition(":")
            row[int(j) - 1] = float(v)
        sv.append(row)
    if not sv:
        raise ModelError("BRISQUE model: no support vectors")
    return np.asarray(sv), np.asarray(coef), float(header["gamma"]), float(header["rho"])


def _package_model_dir() -> Path:
    spec = importlib.util.find_spec("brisque")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("BRISQUE needs the model of the 'brisque' package: pip install brisque==0.2.0")
    d = Path(list(spec.submodule_search_locations)[0]) / "models"
    if not (d / "svm.txt").is_file() or not (d / "normalize.pickle").is_file():
        raise ModelError(f"BRISQUE model files missing in {d}")
    return d


@functools.lru_cache(maxsize=1)
def load_model(model_dir: str | None = None) -> SVRModel:
    """The shipped BRISQUE SVR of the 'brisque' package (or of ``model_dir`` with svm.txt + normalize.pickle)."""
    d = Path(model_dir) if model_dir else _package_model_dir()
    sv, coef, gamma, rho = parse_libsvm_model((d / "svm.txt").read_text())
    with open(d / "normalize.pickle", "rb") as f:
        try:
            norm = _NoGlobals(f).load()
        except pickle.UnpicklingError as e:
            raise ModelError(f"BRISQUE normalisation file {d / 'normalize.pickle'}: {e}") from None
    lo, hi = np.asarray(norm["min_"], np.float64), np.asarray(norm["max_"], np.float64)
    if lo.shape != (N_FEATURES,) or hi.shape != (N_FEATURES,):
        raise ModelError("BRISQUE normalisation file: expected 36 minima and maxima")
    return SVRModel(sv=sv, coef=coef, gamma=gamma, rho=rho, feat_min=lo, feat_max=hi)


def brisque_score(image: np.ndarray, model: SVRModel | None = None) -> float:
    """BRISQUE score of an RGB or gray image (about 0 = pristine .. 100 = heavily distorted; lower is better)."""
    m = model or load_model()
    return float(m.predict(brisque_features(image))[0])
