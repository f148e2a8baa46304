"""metrics.report: the "which faces stay recognisable" split by CelebA label, against hand counts."""

from __future__ import annotations

import math

import pytest

from a3gan.metrics.report import failure_table


def _report(flags0, flags5, labels, names=("Eyeglasses", "Male")):
    def row(method, flags):
        return {
            "method": method,
            "kind": "a3gan",
            "model": "a3gan",
            "verification": {"indep": {"far=0.001": {"same_image_verified": flags}}},
        }

    return {
        "settings": {"fars": [0.001]},
        "recognizers": [
            {"name": "dlib", "used_in_training": True, "thresholds": {"far=0.001": {"reliable": True}}},
            {"name": "indep", "used_in_training": False, "thresholds": {"far=0.001": {"reliable": True}}},
        ],
        "rows": [{"method": "Original", "kind": "original"}, row("a3gan-0", flags0), row("a3gan-5", flags5)],
        "face_labels": {"names": list(names), "values": labels},
    }


def test_failure_table_hand_counts():
    # 20 faces: the first 10 wear glasses; 6 of those and 1 of the others stay verified (a3gan-0): gap 50 points.
    # Male = odd faces: verified 1, 3, 5 of them vs 0, 2, 4, 10 of the others (30 / 40): gap 10, listed second;
    # a3gan-5 verifies faces 0-2: with glasses 3/10 vs 0/10, Male (face 1) 1/10 vs 2/10.
    labels = [[int(i < 10), i % 2] for i in range(20)]
    f0 = [1] * 6 + [0] * 4 + [1] + [0] * 9
    f5 = [1] * 3 + [0] * 17
    md = failure_table(_report(f0, f5, labels), min_support=10)
    lines = [line for line in md.splitlines() if line.startswith("| ")]
    assert lines[0].startswith("| CelebA label")
    assert lines[1] == "| Eyeglasses | 10 / 10 | 60.0 / 10.0 | 30.0 / 0.0 |"
    assert lines[2] == "| Male | 10 / 10 | 30.0 / 40.0 | 10.0 / 20.0 |"
    assert "indep" in md and "a3gan-0 35.0%" in md


def test_failure_table_needs_support_and_labels():
    labels = [[int(i < 3), 0] for i in range(20)]  # 3 with glasses, nobody male: neither has 10 per side
    assert failure_table(_report([0] * 20, [0] * 20, labels), min_support=10) == ""
    rep = _report([0] * 20, [0] * 20, labels)
    del rep["face_labels"]
    assert failure_table(rep) == ""
    rep = _report([0] * 19, [0] * 20, [[1, 0]] * 10 + [[0, 1]] * 10)
    assert failure_table(rep) == ""  # per-face flags do not match the labels: no table rather than a wrong one


def test_lattice_ratio_hand_values():
    from a3gan.metrics.report import lattice_ratio

    orig = {"spectrum": {"power": [9.0, 4.0, 2.0, 0.5]}}
    assert lattice_ratio({"spectrum": {"power": [1.0, 1.0, 1.0, 1.25]}}, orig) == pytest.approx(2.5)
    assert lattice_ratio(orig, orig) == pytest.approx(1.0)
    # not measured (old reports, crops too small) -> NaN, shown as "-"
    assert math.isnan(lattice_ratio({}, orig))
    assert math.isnan(lattice_ratio(orig, None))
    assert math.isnan(lattice_ratio({"spectrum": {"score": None, "why": "too small"}}, orig))
    assert math.isnan(lattice_ratio(orig, {"spectrum": {"power": [1.0, 0.0]}}))
