"""a3gan.metrics.kid: unbiased KID (cubic kernel) and its per-group, reference-standardised form (KID-MF)."""

from __future__ import annotations

import numpy as np
import pytest

from a3gan.errors import InputError
from a3gan.metrics.kid import kid, kid_by_group


def test_kid_hand_value():
    # d = 1, k(x, y) = (x y + 1)^3. a = {0, 1}, b = {1, 2}:
    # a-a off-diagonal (0*1+1)^3 = 1 -> mean 1; b-b (1*2+1)^3 = 27 -> 27;
    # a-b: 1, 1, 8, 27 -> mean 9.25; KID = 1 + 27 - 2 * 9.25 = 9.5
    assert kid(np.array([[0.0], [1.0]]), np.array([[1.0], [2.0]])) == pytest.approx(9.5)


def test_kid_same_distribution_near_zero_and_grows_with_shift():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 8))
    same = kid(a, rng.normal(size=(400, 8)))
    near = kid(a, rng.normal(0.3, 1.0, size=(400, 8)))
    far = kid(a, rng.normal(1.0, 1.0, size=(400, 8)))
    assert abs(same) < 0.1 < near < far  # measured: 0.02, 0.49, 7.9
    assert kid(a, a[::-1]) == pytest.approx(kid(a, a))  # order does not matter
    assert kid(a, a) < 0  # unbiased: identical sets sit just below 0 (the diagonal is left out)


def test_kid_by_group_standardises_by_reference_and_averages():
    rng = np.random.default_rng(1)
    ref = {56: rng.normal(5.0, 10.0, size=(200, 4)), 7: rng.normal(size=(200, 3))}
    x = {56: rng.normal(5.0, 10.0, size=(100, 4)), 7: rng.normal(2.0, 1.0, size=(100, 3))}
    out = kid_by_group(ref, x)
    assert set(out["groups"]) == {"56", "7"} and out["n"] == 100 and out["n_ref"] == 200
    r = ref[56]
    mu, sd = r.mean(0), r.std(0) + 1e-6
    assert out["groups"]["56"] == pytest.approx(kid((r - mu) / sd, (x[56] - mu) / sd))
    assert out["score"] == pytest.approx((out["groups"]["56"] + out["groups"]["7"]) / 2)
    assert abs(out["groups"]["56"]) < 0.1 < out["groups"]["7"]  # a feature's scale alone does not count
    # the same scaling of reference and set leaves the score unchanged
    scaled = kid_by_group({k: 3 * v for k, v in ref.items()}, {k: 3 * v for k, v in x.items()})
    assert scaled["score"] == pytest.approx(out["score"], rel=1e-4)  # up to the 1e-6 std guard


def test_bad_arguments():
    with pytest.raises(InputError, match="feature sets"):
        kid(np.zeros((3, 2)), np.zeros((3, 4)))
    with pytest.raises(InputError, match="at least 2"):
        kid(np.zeros((1, 2)), np.zeros((3, 2)))
    with pytest.raises(InputError, match="groups differ"):
        kid_by_group({1: np.zeros((3, 2))}, {2: np.zeros((3, 2))})
