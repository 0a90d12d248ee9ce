"""Label noise for the arena, applied to training labels only (the test set stays clean).

Three generators, each deterministic given a :class:`numpy.random.Generator`:

* ``symmetric``: in every class, exactly ``round(r * n_c)`` labels are replaced by a class drawn
  uniformly from the *other* K-1 classes, so the observed noise rate is r (the convention of
  Ma et al. 2020's Active-Passive-Losses code). The clean class stays the most frequent
  observed label while r < (K-1)/K.
* ``asymmetric``: class-pair flips y -> (y+1) mod K for exactly ``round(r * n_c)`` samples of
  each class (the "pair flipping" of Han et al. 2018, Co-teaching). Needs r < 0.5, otherwise
  the flipped class becomes the majority.
* ``instance``: instance-dependent noise of Xia et al. 2020 ("Part-dependent label noise",
  NeurIPS, Alg. 2): a per-sample flip rate q_i from a normal N(r, 0.1^2) truncated to [0, 1],
  a random projection W_y (d x K) per class, and the flip distribution
  q_i * softmax(x_i W_y with the true class masked) plus 1 - q_i on the true class.
"""

from __future__ import annotations

import numpy as np

NOISE_KINDS = ("none", "symmetric", "asymmetric", "instance")


def max_noise_rate(kind: str, num_classes: int) -> float:
    """The largest meaningful rate (exclusive) for a noise kind: beyond it the true class is no
    longer the most likely observed label."""
    if kind == "symmetric":
        return (num_classes - 1) / num_classes
    if kind in ("asymmetric", "instance"):
        return 0.5
    return 1.0


def _per_class_choice(labels: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
    """Indices of exactly round(rate * n_c) samples of each class c."""
    picked = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        k = int(round(rate * len(idx)))
        picked.append(rng.choice(idx, size=k, replace=False))
    return np.sort(np.concatenate(picked)) if picked else np.zeros(0, dtype=np.int64)


def symmetric_noise(
    labels: np.ndarray, rate: float, num_classes: int, rng: np.random.Generator
) -> np.ndarray:
    """Flip exactly round(rate * n_c) labels of each class to a uniformly drawn other class."""
    noisy = labels.copy()
    idx = _per_class_choice(labels, rate, rng)
    # An offset in 1..K-1 added mod K is uniform over the other classes.
    offset = rng.integers(1, num_classes, size=len(idx))
    noisy[idx] = (labels[idx] + offset) % num_classes
    return noisy


def asymmetric_noise(
    labels: np.ndarray, rate: float, num_classes: int, rng: np.random.Generator
) -> np.ndarray:
    """Flip exactly round(rate * n_c) labels of each class c to (c + 1) mod K."""
    noisy = labels.copy()
    idx = _per_class_choice(labels, rate, rng)
    noisy[idx] = (labels[idx] + 1) % num_classes
    return noisy


def _truncated_normal(
    mean: float, std: float, size: int, rng: np.random.Generator
) -> np.ndarray:
    out = rng.normal(mean, std, size)
    bad = (out < 0) | (out > 1)
    while bad.any():  # rejection sampling; the mass inside [0, 1] is large for mean in [0, .5)
        out[bad] = rng.normal(mean, std, int(bad.sum()))
        bad = (out < 0) | (out > 1)
    return out


def instance_noise(
    labels: np.ndarray,
    rate: float,
    num_classes: int,
    rng: np.random.Generator,
    features: np.ndarray,
) -> np.ndarray:
    """Instance-dependent flips (Xia et al. 2020): harder-looking samples flip more often, and
    towards classes their features resemble under a random projection."""
    n = len(labels)
    x = features.reshape(n, -1).astype(np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    flip_rate = _truncated_normal(rate, 0.1, n, rng)
    w = rng.standard_normal((num_classes, x.shape[1], num_classes))
    scores = np.einsum("nd,ndk->nk", x, w[labels])
    scores[np.arange(n), labels] = -np.inf
    scores -= scores.max(axis=1, keepdims=True)
    p = np.exp(scores)
    p /= p.sum(axis=1, keepdims=True)
    p *= flip_rate[:, None]
    p[np.arange(n), labels] = 1.0 - flip_rate
    # Inverse-CDF sampling, one uniform per row.
    u = rng.random(n)[:, None]
    noisy = (np.cumsum(p, axis=1) < u).sum(axis=1)
    out: np.ndarray = np.minimum(noisy, num_classes - 1).astype(labels.dtype)
    return out


def add_label_noise(
    labels: np.ndarray,
    kind: str,
    rate: float,
    num_classes: int,
    rng: np.random.Generator,
    features: np.ndarray | None = None,
) -> np.ndarray:
    """Return a noisy copy of ``labels`` (``kind`` in :data:`NOISE_KINDS`, rate r in [0, 1))."""
    if kind == "none" or rate == 0.0:
        return labels.copy()
    if kind == "symmetric":
        return symmetric_noise(labels, rate, num_classes, rng)
    if kind == "asymmetric":
        return asymmetric_noise(labels, rate, num_classes, rng)
    if kind == "instance":
        if features is None:
            raise ValueError("add_label_noise: features are required for kind='instance'")
        return instance_noise(labels, rate, num_classes, rng, features)
    raise ValueError(
        f"add_label_noise: kind must be one of {', '.join(map(repr, NOISE_KINDS))}, got {kind!r}"
    )
