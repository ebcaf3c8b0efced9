"""Per-band MMD against a direct computation and its expected behaviour."""

import math

import numpy as np
import pytest
import torch

from landslide.mmd import median_distance, mmd2, per_band_mmd


def direct_mmd2(x: np.ndarray, y: np.ndarray, sigmas: list[float], biased: bool) -> float:
    """Textbook double loops over a sum of Gaussian kernels."""

    def k(a: np.ndarray, b: np.ndarray) -> float:
        d2 = float(np.sum((a - b) ** 2))
        return sum(math.exp(-d2 / (2 * s * s)) for s in sigmas)

    n, m = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if biased or i != j)
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if biased or i != j)
    xy = sum(k(x[i], y[j]) for i in range(n) for j in range(m))
    nx = n * n if biased else n * (n - 1)
    ny = m * m if biased else m * (m - 1)
    return xx / nx + yy / ny - 2 * xy / (n * m)


@pytest.mark.parametrize("biased", [False, True])
def test_mmd2_equals_direct_computation(biased: bool) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (7, 2))
    y = rng.normal(0.5, 1.5, (9, 2))
    pooled = np.concatenate([x, y])
    dists = [
        np.linalg.norm(a - b) for i, a in enumerate(pooled) for j, b in enumerate(pooled) if i != j
    ]
    median = float(np.sort(dists)[(len(dists) - 1) // 2])  # torch's median is the lower one
    assert float(median_distance(torch.tensor(x), torch.tensor(y))) == pytest.approx(median)
    expected = direct_mmd2(x, y, [0.5 * median, median, 2 * median], biased)
    got = float(mmd2(torch.tensor(x), torch.tensor(y), biased=biased))
    assert got == pytest.approx(expected, rel=1e-6)
    fixed = float(
        mmd2(torch.tensor(x), torch.tensor(y), bandwidth=0.7, scales=[1.0], biased=biased)
    )
    assert fixed == pytest.approx(direct_mmd2(x, y, [0.7], biased), rel=1e-6)


def test_identical_samples_give_zero() -> None:
    x = torch.randn(50, 3, generator=torch.Generator().manual_seed(1))
    assert float(mmd2(x, x.clone(), biased=True)) == pytest.approx(0.0, abs=1e-12)


def test_mmd_is_near_zero_for_one_distribution_and_grows_with_mean_shift() -> None:
    g = torch.Generator().manual_seed(2)
    base = torch.randn(400, 1, generator=g)
    same = torch.randn(400, 1, generator=g)
    values = [
        float(mmd2(base, same + shift, bandwidth=1.0)) for shift in (0.0, 0.25, 0.5, 1.0, 2.0)
    ]
    assert abs(values[0]) < 0.02
    assert all(a < b for a, b in zip(values, values[1:], strict=False))
    assert values[-1] > 0.5


def test_per_band_mmd_finds_the_shifted_band() -> None:
    g = torch.Generator().manual_seed(3)
    source = torch.rand(20, 4, 8, 8, generator=g)
    target = torch.rand(30, 4, 8, 8, generator=g)
    target[:, 2] += 0.5
    result = per_band_mmd(source, target, ["a", "b", "c", "d"], pixels=500, seed=0)
    assert list(result) == ["a", "b", "c", "d"]
    assert max(result, key=result.get) == "c"
    assert result["c"] > 10 * max(abs(result[b]) for b in "abd")
    assert per_band_mmd(source, target, list("abcd"), pixels=500, seed=0) == result
