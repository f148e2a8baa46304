"""Writes an evaluation report: ``report.json`` (every number and setting), ``report.md`` (Table 5 and Table 1
layouts) and trade-off plots in the style of the paper's Fig. 4-6 (one labelled point per method)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from a3gan.attributes import ATTRIBUTES
from a3gan.metrics.fid import FID_NA


def jsonable(x: Any) -> Any:
    """NaN/inf -> strings so report.json is strict JSON; numpy -> Python."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    if isinstance(x, Path):
        return str(x)
    return x


def _num(x: Any) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return float("nan")
    return v


def _fmt(x: Any, pct: bool = False, digits: int = 2) -> str:
    if isinstance(x, str) and x not in ("nan", "inf", "-inf"):
        return x
    v = _num(x)
    if math.isnan(v):
        return "-"
    if math.isinf(v):
        return "inf"
    return f"{100 * v:.{digits}f}" if pct else f"{v:.{digits}f}"


def main_far_key(report: dict[str, Any]) -> str:
    """The operating point of the main table: the smallest FAR whose calibration had enough impostor pairs."""
    fars = sorted(report["settings"]["fars"])
    for f in fars:
        key = f"far={f:g}"
        if all(r["thresholds"][key]["reliable"] for r in report["recognizers"]):
            return key
    return f"far={fars[-1]:g}"


def _ver(row: dict[str, Any], rec: str, key: str) -> float:
    v = row["verification"].get(rec)
    if v is None:
        return float("nan")
    which = "other_images" if row["kind"] == "original" else "same_image"
    return _num(v[key][which])


def _attr_pres(row: dict[str, Any]) -> float:
    a = row.get("attributes")
    if not a:
        return float("nan")
    return _num(a["preserved_mean"])


def _fatigue(row: dict[str, Any]) -> float:
    lm = row.get("landmarks")
    return _num(lm.get("fatigue_corr")) if lm else float("nan")


def _fid(row: dict[str, Any]) -> Any:
    f = row.get("fid") or {}
    return f.get("value")


def lattice_ratio(row: dict[str, Any], original: dict[str, Any] | None) -> float:
    """Line-lattice score of a row: its face crops' power on the u/v axes in the ring nearest Nyquist
    (0.44-0.5 cycles/px) over the originals' (``spectrum`` of :func:`a3gan.evaluate._score_summary`); 1 for
    real faces, NaN when either was not measured."""
    try:
        num = row["spectrum"]["power"][-1]
        den = original["spectrum"]["power"][-1]  # type: ignore[index]
    except (KeyError, TypeError, IndexError):
        return float("nan")
    return float(num) / float(den) if den else float("nan")


def table5(report: dict[str, Any]) -> str:
    """Markdown table in the layout of the paper's Table 5 (one row per method plus "Original")."""
    key = main_far_key(report)
    recs = [r["name"] for r in report["recognizers"]]
    dets = report["settings"]["detectors"]
    head = (
        ["Method"]
        + [f"Ver. {r} ↓" for r in recs]
        + [f"Det. {d} ↑" for d in dets]
        + [
            "Attr. kept (m=0) ↑",
            "Fatigue r ↑",
            "Expr. Procrustes ↓",
            "BRISQUE ↓",
            "Grid ↓",
            "Colour noise ↓",
            "Lattice ↓",
            "KID-MF ↓",
            "FID ↓",
            "BG SSIM ↑",
            "BG PSNR ↑",
        ]
    )
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    original = next((r for r in report["rows"] if r["kind"] == "original"), None)
    for row in report["rows"]:
        orig = row["kind"] == "original"
        cells = [row["method"]]
        cells += [_fmt(_ver(row, r, key), pct=True) for r in recs]
        cells += [_fmt(row["detection"].get(d, {}).get("rate"), pct=True) for d in dets]
        cells.append("-" if orig else _fmt(_attr_pres(row), pct=True))
        cells.append("-" if orig else _fmt(_fatigue(row), digits=3))
        cells.append("-" if orig else _fmt((row.get("landmarks") or {}).get("procrustes"), digits=4))
        cells.append(_fmt(row["brisque"]["mean"]))
        cells.append(_fmt((row.get("grid") or {}).get("score")))
        cells.append(_fmt((row.get("colour") or {}).get("score"), digits=3))
        cells.append(_fmt(lattice_ratio(row, original)))
        cells.append(_fmt((row.get("kid") or {}).get("score"), digits=2))
        cells.append("-" if orig else _fmt(_fid(row)))
        bg = row.get("background") or {}
        cells.append("-" if orig else _fmt(bg.get("ssim"), digits=3))
        cells.append("-" if orig else _fmt(bg.get("psnr")))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verification_table(report: dict[str, Any]) -> str:
    """Every operating point: same-image and other-image verification (%), rank-1 (%), mean cosine."""
    recs = [r["name"] for r in report["recognizers"]]
    keys = list(report["recognizers"][0]["thresholds"]) if recs else []
    head = (
        ["Method", "Recognizer"] + [f"{k} same / other" for k in keys] + ["rank-1", "mean cos same / other"]
    )
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in report["rows"]:
        for r in recs:
            v = row["verification"][r]
            cells = [row["method"], r]
            cells += [f"{_fmt(v[k]['same_image'], True)} / {_fmt(v[k]['other_images'], True)}" for k in keys]
            cells.append(_fmt(v["rank1"], pct=True))
            cells.append(f"{_fmt(v['mean_cos'], digits=3)} / {_fmt(v['mean_cos_other_images'], digits=3)}")
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def attribute_table(report: dict[str, Any]) -> str:
    rows = [r for r in report["rows"] if r.get("attributes")]
    if not rows:
        return "_not measured_"
    head = ["Method"] + list(ATTRIBUTES) + ["kept (m=0)", "changed (m=1)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    info = report.get("attribute_classifier") or {}
    if info.get("heldout_accuracy"):
        acc = info["heldout_accuracy"]
        lines.append(
            "| _classifier accuracy_ | " + " | ".join(_fmt(acc[a], True, 1) for a in ATTRIBUTES) + " | | |"
        )
    for r in rows:
        a = r["attributes"]
        m = a.get("mask") or [0] * len(ATTRIBUTES)
        cells = [r["method"]]
        for i, _ in enumerate(ATTRIBUTES):
            v = a["change"][i] if m[i] else a["preservation"][i]
            cells.append(("Δ " if m[i] else "") + _fmt(v, True, 1))
        cells += [_fmt(a["preserved_mean"], True, 1), _fmt(a["changed_mean"], True, 1)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def detection_table(report: dict[str, Any]) -> str:
    dets = report["settings"]["detectors"]
    head = ["Method"] + [f"{d} rate / conf" for d in dets]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in report["rows"]:
        cells = [row["method"]]
        for d in dets:
            x = row["detection"].get(d, {})
            cells.append(f"{_fmt(x.get('rate'), True)} / {_fmt(x.get('conf'), digits=3)}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def landmark_table(report: dict[str, Any]) -> str:
    head = [
        "Method",
        "r(EAR)",
        "r(MAR)",
        "eye state agree (κ)",
        "mouth state agree (κ)",
        "both agree",
        "|ΔEAR|",
        "|ΔMAR|",
        "Procrustes",
        "n",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in report["rows"]:
        lm = row.get("landmarks")
        if not lm or not lm.get("n"):
            continue
        lines.append(
            "| "
            + " | ".join(
                [
                    row["method"],
                    _fmt(lm["ear_corr"], digits=3),
                    _fmt(lm["mar_corr"], digits=3),
                    f"{_fmt(lm['eye_state_agreement'], True)} ({_fmt(lm['eye_kappa'], digits=2)})",
                    f"{_fmt(lm['mouth_state_agreement'], True)} ({_fmt(lm['mouth_kappa'], digits=2)})",
                    _fmt(lm["fatigue_agreement"], True),
                    _fmt(lm["ear_abs_diff"], digits=3),
                    _fmt(lm["mar_abs_diff"], digits=3),
                    _fmt(lm["procrustes"], digits=4),
                    str(lm["n"]),
                ]
            )
            + " |"
        )
    return "\n".join(lines)


def table1(report: dict[str, Any]) -> str | None:
    """The ablation table in the layout of the paper's Table 1 (only when ablation checkpoints were given)."""
    rows = [
        r
        for r in report["rows"]
        if r.get("model") not in (None, "a3gan") or (r.get("model") == "a3gan" and r["method"] == "a3gan-5")
    ]
    if not report.get("ablation"):
        return None
    key = main_far_key(report)
    recs = [r["name"] for r in report["recognizers"]]
    head = [
        "A3GAN model",
        "checkpoint",
        *[f"Face Ver. {r} ↓" for r in recs],
        "Fatigue r ↑",
        "FID ↓",
        "BRISQUE ↓",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cfg = r.get("config") or {}
        cells = [cfg.get("label", r["method"]), str(r.get("model"))]
        cells += [_fmt(_ver(r, rec, key), pct=True) for rec in recs]
        cells += [_fmt(_fatigue(r), digits=3), _fmt(_fid(r)), _fmt(r["brisque"]["mean"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def failure_table(report: dict[str, Any], min_support: int = 10, top: int = 8) -> str:
    """Which faces stay recognisable: for the A3GAN rows, the independent recognizer's same-image verification
    rate among the evaluated faces that have a CelebA label vs those that do not, for the labels with the
    largest gap (each side needs ``min_support`` faces). Empty without CelebA labels or per-face results."""
    labels = report.get("face_labels")
    recs = report["recognizers"]
    indep = [r["name"] for r in recs if not r["used_in_training"]]
    rows = [r for r in report["rows"] if r["kind"] == "a3gan" and r.get("model") in (None, "a3gan")]
    if not labels or not recs or not rows:
        return ""
    rec = indep[-1] if indep else recs[0]["name"]
    key = main_far_key(report)
    names, values = labels["names"], np.asarray(labels["values"], dtype=bool)
    flags = {}
    for r in rows:
        f = r["verification"].get(rec, {}).get(key, {}).get("same_image_verified")
        if f is None or len(f) != len(values):
            return ""
        flags[r["method"]] = np.asarray(f, dtype=bool)
    first = flags[rows[0]["method"]]
    gaps = []
    for k, name in enumerate(names):
        has = values[:, k]
        if has.sum() < min_support or (~has).sum() < min_support:
            continue
        gaps.append((first[has].mean() - first[~has].mean(), k, name))
    if not gaps:
        return ""
    gaps.sort(key=lambda g: -abs(g[0]))
    head = "| CelebA label | faces with / without | " + " | ".join(f"{m}: ver. with / without" for m in flags)
    lines = [
        f"Verification by **{rec}** at {key} (same image), split by the CelebA labels of the evaluated faces; "
        f"the {min(top, len(gaps))} labels with the largest gap for {rows[0]['method']} (each side >= "
        f"{min_support} faces). Overall: "
        + ", ".join(f"{m} {100 * f.mean():.1f}%" for m, f in flags.items())
        + ".",
        "",
        head + " |",
        "|---|---|" + "---|" * len(flags),
    ]
    for _, k, name in gaps[:top]:
        has = values[:, k]
        cells = [name, f"{int(has.sum())} / {int((~has).sum())}"]
        cells += [f"{100 * f[has].mean():.1f} / {100 * f[~has].mean():.1f}" for f in flags.values()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown(report: dict[str, Any]) -> str:
    s = report["settings"]
    key = main_far_key(report)
    out = [
        "# a3gan evaluation report",
        "",
        f"Data: `{s['data']}` ({'CelebA-aligned crops' if s['aligned'] else 'in-the-wild photos via the pipeline'}), "
        f"{s['n_images']} images of {s['n_identities']} identities ({s['min_per_identity']}+ images each), "
        f"limit {s['limit']}, seed {s['seed']}, crops at {s['resolution']} px, device {s['device']}. "
        f"{s['n_genuine_pairs']} genuine and {s['n_impostor_pairs']} impostor pairs of originals.",
        "",
        "## Table 5 layout",
        "",
        table5(report),
        "",
        f"- **Ver.**: % of (original, anonymized) pairs of the SAME image still verified as the same person, at the "
        f"threshold calibrated on the originals at **{key.replace('far=', 'FAR=')}** (lower = more anonymous). "
        "Row *Original*: % of genuine pairs (two different images of one person) verified, i.e. the recognizer's "
        "true-accept rate.",
        "- **Det.**: % of faces detected in the original that a detector still finds at the same place "
        "(IoU >= 0.3) after anonymization; row *Original*: % of originals with a detected face.",
        "- **Attr. kept**: mean share of attributes with m=0 whose prediction by the evaluation classifier is "
        "unchanged (baselines: all 10 attributes).",
        "- **Fatigue r** (PROXY for the paper's VGG fatigue detector): mean Pearson correlation, over the faces, "
        "of the eye aspect ratio and of the inner-lip mouth aspect ratio of the original and the anonymized face "
        "(dlib 68-point landmarks placed in the original face's box; 1 = eye and mouth opening preserved, 0 = "
        "unrelated). State agreement and Cohen's kappa (EAR < 0.2 = eye closed, MAR > 0.3 = mouth open) are in "
        "the landmark table. **Expr. Procrustes** (PROXY for expression recognition): "
        "mean Procrustes disparity of the 68 landmarks, original vs anonymized (0 = same shape).",
        f"- **FID**: torchmetrics/torch-fidelity Inception-v3 when weights were given (`--inception`), else "
        f'"{FID_NA}". **BG SSIM/PSNR**: outside the face mask (SSIM 1 / PSNR inf = untouched).',
        "",
        "## Who measured what",
        "",
    ]
    for r in report["recognizers"]:
        th = r["thresholds"]
        parts = [
            f"{k}: cos >= {v['value']:.4f} (measured FAR {100 * v['far']:.3f}%, TAR {100 * v['tar']:.2f}%"
            + ("" if v["reliable"] else ", too few impostor pairs to resolve this FAR")
            + ")"
            for k, v in th.items()
        ]
        info = r["info"]
        out.append(
            f"- Recognizer **{r['name']}** ({info.get('weights') or 'built-in weights'}; sha256 "
            f"{info.get('sha256')}); ROC AUC on original pairs {r['roc_auc_originals']:.4f}. "
            + (
                "**Used by training's L_deid: not an independent judge.** "
                if r["used_in_training"]
                else "Independent of training. "
            )
            + "; ".join(parts)
        )
    out.append(f"- Detectors: {', '.join(s['detectors'])}.")
    a = report.get("attribute_classifier")
    if a:
        acc = a.get("heldout_accuracy") or {}
        bal = a.get("heldout_balanced_accuracy") or {}
        out.append(
            f"- Attribute classifier (evaluation only, not the GAN's discriminator): `{a.get('path')}`. "
            f"{a.get('split', '')}. Held-out accuracy on the evaluated originals: mean "
            f"{100 * np.mean(list(acc.values())):.1f}% (balanced {100 * np.nanmean(list(bal.values())):.1f}%)."
            if acc
            else f"- Attribute classifier: `{a.get('path')}`."
        )
    out.append("- Landmarks: dlib `shape_predictor_68_face_landmarks.dat` (face_recognition_models).")
    out.append("- BRISQUE: our NumPy port of the features with the `brisque` 0.2.0 package's SVR model.")
    out.append(
        "- Grid: periodic-artifact score of the face crops (peak of their mean power spectrum at periods of 2 and 4 "
        "px over the median of the 24 bins around it; natural faces stay near 1-2, checkerboard textures "
        "of transposed convolutions reach 5-150). BRISQUE does not see such a grid."
    )
    out.append(
        "- Colour noise: power of the crops' chroma (Cb, Cr) over that of their luma at frequencies above half "
        "Nyquist, median over faces. Photos have little fine colour detail (CelebA: 0.005); a patchwork of "
        "coloured pixels scores 0.1 and more."
    )
    out.append(
        "- Lattice: power of the crops' horizontal and vertical lines near Nyquist (luma spectrum on the u/v axes, "
        "0.44-0.5 cycles/px) over the originals'. Real faces score 1; fine lines and block edges (a generator's "
        "upsampling lattice, pixelation) raise it above 1, and BRISQUE, Grid and Colour noise do not see them; a "
        "blurred face scores below 1."
    )
    out.append(
        "- KID-MF (realism): kernel inception distance (unbiased, cubic kernel) between the crops and other real "
        "faces of the set, on the per-channel mean and std of every convolution of the ONNX recognizer (MobileFace; "
        "never seen in training), mean over its feature-map sizes. Other real faces score about 0, blur and "
        "pixelation 100 and more; lower is more like real faces."
    )
    out += ["", "## Verification at every operating point", "", verification_table(report), ""]
    out += ["## Detection", "", detection_table(report), ""]
    out += [
        "## Attributes (Δ = change rate of an attribute allowed to change; else preservation rate)",
        "",
        attribute_table(report),
        "",
    ]
    out += ["## Eye / mouth state and landmark geometry (proxies)", "", landmark_table(report), ""]
    ft = failure_table(report)
    if ft:
        out += ["## Which faces stay recognisable", "", ft, ""]
    t1 = table1(report)
    if t1:
        out += ["## Ablations (Table 1 layout, A3GAN-5 mask)", "", t1, ""]
    if report.get("notes"):
        out += ["## Notes", ""] + [f"- {n}" for n in report["notes"]] + [""]
    out += ["## Plots", ""] + [f"![{p}]({p})" for p in report.get("plots", [])] + [""]
    return "\n".join(out)


def _scatter(
    ax: Any, rows: list[dict[str, Any]], xs: list[float], ys: list[float], xlabel: str, ylabel: str
) -> None:
    colors = {"a3gan": "tab:red", "baseline": "tab:blue", "original": "tab:green"}
    pts = [(x, y) for x, y in zip(xs, ys, strict=True) if not (math.isnan(x) or math.isnan(y))]
    xr = (max(p[0] for p in pts) - min(p[0] for p in pts)) if pts else 1.0
    yr = (max(p[1] for p in pts) - min(p[1] for p in pts)) if pts else 1.0
    placed: list[tuple[float, float]] = []  # label anchors in axis-fraction units
    for r, x, y in zip(rows, xs, ys, strict=True):
        if math.isnan(x) or math.isnan(y):
            continue
        ax.scatter([x], [y], c=colors.get(r["kind"], "k"), s=40, zorder=3)
        # move a label up one line while it would overlap one already placed (points that nearly coincide)
        u, v = x / (xr or 1.0), y / (yr or 1.0)
        k = 0
        while any(abs(u - pu) < 0.15 and abs(v + 0.045 * k - pv) < 0.04 for pu, pv in placed):
            k += 1
        placed.append((u, v + 0.045 * k))
        ax.annotate(r["method"], (x, y), textcoords="offset points", xytext=(5, 4 + 13 * k), fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)


def plots(report: dict[str, Any], outdir: Path) -> list[str]:
    """Fig. 4-6 style trade-off plots; x = verification rate of the independent recognizer (lower = more
    anonymous), y = a quality or utility measure. Returns the file names written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    key = main_far_key(report)
    recs = report["recognizers"]
    if not recs:
        return []
    indep = [r["name"] for r in recs if not r["used_in_training"]]
    rec = indep[-1] if indep else recs[0]["name"]
    rows = [r for r in report["rows"] if r["kind"] != "original"]
    xs = [100 * _ver(r, rec, key) for r in rows]
    xlabel = f"face verification by {rec} (%) ↓  [{key}]"
    written = []

    figs: list[tuple[str, list[tuple[list[float], str]]]] = [
        (
            "fig4_verification_vs_quality.png",
            [
                ([_num(r["brisque"]["mean"]) for r in rows], "BRISQUE ↓"),
                (
                    [_num(_fid(r)) if not isinstance(_fid(r), str) else float("nan") for r in rows],
                    "FID ↓" if any(not isinstance(_fid(r), str) for r in rows) else f"FID: {FID_NA}",
                ),
            ],
        ),
        (
            "fig5_verification_vs_detection.png",
            [
                (
                    [100 * _num(r["detection"].get(d, {}).get("rate")) for r in rows],
                    f"re-detection by {d} (%) ↑",
                )
                for d in report["settings"]["detectors"]
            ],
        ),
        (
            "fig6_verification_vs_controllability.png",
            [
                ([100 * _attr_pres(r) for r in rows], "attributes kept, m=0 (%) ↑"),
                ([_fatigue(r) for r in rows], "r of eye/mouth aspect ratios ↑ (fatigue proxy)"),
            ],
        ),
    ]
    for fname, panels in figs:
        if not panels:
            continue
        fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.2), squeeze=False)
        for ax, (ys, ylabel) in zip(axes[0], panels, strict=True):
            _scatter(ax, rows, xs, ys, xlabel, ylabel)
            if all(math.isnan(y) for y in ys):
                ax.text(0.5, 0.5, "not measured", ha="center", va="center", transform=ax.transAxes)
        fig.tight_layout()
        fig.savefig(outdir / fname, dpi=110)
        plt.close(fig)
        written.append(fname)
    return written


def write_report(report: dict[str, Any], outdir: str | Path) -> None:
    outdir = Path(outdir)
    report["plots"] = plots(report, outdir)
    (outdir / "report.json").write_text(json.dumps(jsonable(report), indent=1, sort_keys=False))
    (outdir / "report.md").write_text(markdown(report))
