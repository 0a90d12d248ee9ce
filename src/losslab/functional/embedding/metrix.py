r"""Metrix: mixup for deep metric learning, and the utilization metric.

Metrix (Venkataramanan et al., ICLR 2022, arXiv 2106.04990) writes a pair-based loss with a
binary label :math:`y(a,x)\in\{0,1\}` (1 = positive) so that mixed examples can carry
interpolated labels:

.. math::

    \ell(a) = \sigma^+\Big(\sum_x y(a,x)\,\rho^+(s(a,x))\Big)
            + \sigma^-\Big(\sum_x (1-y(a,x))\,\rho^-(s(a,x))\Big)

* ``"ms"``: :math:`\rho^+ = e^{-\alpha(s-\lambda)}`, :math:`\rho^- = e^{\beta(s-\lambda)}`,
  :math:`\sigma^\pm = \log(1+\cdot)/\alpha` resp. :math:`/\beta`; ``s`` = cosine similarity.
* ``"contrastive"``: :math:`\rho^+ = [d - m^+]_+`, :math:`\rho^- = [m^- - d]_+`,
  :math:`\sigma^\pm = \mathrm{id}`; ``d`` = Euclidean distance of L2-normalised embeddings
  (PML's ``LpDistance`` default), :math:`m^+ = 0`, :math:`m^- = 0.5` (the Metrix repo).

* ``"ntxent"`` (NT-Xent / InfoNCE, cosine, τ = 0.07) and ``"mw"`` (Mann-Whitney, cosine,
  τ = 0.01) are not of the separable :math:`\sigma^+`/:math:`\sigma^-` form above: a positive
  term depends on the negatives through a log-sum (NT-Xent) or a pairwise difference (MW). Their
  soft forms, ours (the paper mixes only separable losses), weight each positive term by
  :math:`y` and each negative by :math:`1-y` inside it:

  .. math::

      \ell_{\text{nt}}(a) = \sum_x y(a,x)\,
          \mathrm{softplus}\Big(\log\sum_n (1-y(a,n))\,e^{s(a,n)/\tau} - s(a,x)/\tau\Big),\qquad
      \ell_{\text{mw}}(a) = \sum_x y(a,x) \sum_{(b,n)} (1-y(b,n))\,
          \mathrm{softplus}\big((s(b,n) - s(a,x))/\tau\big)

  (MW pools the negatives of every anchor of the same call, as :func:`mw_loss` does). For 0/1
  labels they are NT-Xent summed over the anchor's positives and MW's per-anchor term, and a
  mixed example with :math:`\lambda \in \{0, 1\}` is its clean source; in between they are
  linear in the positive weights but not in the negative ones (a mixed example counts
  :math:`\lambda` as a positive and :math:`1-\lambda` as a negative). The other losses here are
  not pair-based on labels and are not offered: ICNN is a whole-batch nearest-neighbour
  rank score, Proto-Triplet compares queries with class prototypes, OPL averages cosines
  per class (a mixed example has no single class for it).

A mixed example :math:`v = \lambda x + (1-\lambda)x'` (:math:`\lambda\sim\mathrm{Beta}(2,2)`,
at input, feature or embedding level) has label
:math:`\tilde y(a,v) = \lambda y(a,x) + (1-\lambda) y(a,x')`, and the objective is
:math:`E = \frac1N\sum_a [\ell(a) + w\,\tilde\ell(a)]` with mixing strength ``w = 0.4``.

The utilization metric is :math:`u(Q,X) = \frac1{|Q|}\sum_{q} \min_{x\in X}\lVert f(q)-f(x)\rVert`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as TF
from torch import Tensor

from ..._core.validation import check_choice, check_number, check_tensor
from .._core.distances import similarity_matrix
from .._core.pair_batch import check_pair_batch, log1p_sum_exp, masked_logsumexp

MixPairs = tuple[Tensor, Tensor, Tensor]
BASE_LOSSES = ("ms", "contrastive", "ntxent", "mw")
_DEFAULTS: dict[str, dict[str, float]] = {
    "ms": {"alpha": 2.0, "beta": 50.0, "base": 0.5},
    "contrastive": {"pos_margin": 0.0, "neg_margin": 0.5},
    "ntxent": {"temperature": 0.07},
    "mw": {"temperature": 0.01},
}


def _pair_terms(
    x: Tensor, r: Tensor, soft: Tensor, valid: Tensor, base_loss: str, hp: dict[str, float]
) -> Tensor:
    """Per-anchor ℓ(a) of the label-aware form for soft labels ``soft`` (N, M) in [0, 1]."""
    pos_w = torch.where(valid, soft, 0.0)
    neg_w = torch.where(valid, 1.0 - soft, 0.0)
    if base_loss == "ms":
        s = similarity_matrix(x, r, False, "cosine")
        alpha, beta, lam = hp["alpha"], hp["beta"], hp["base"]
        tiny = torch.finfo(s.dtype).tiny
        # Σ w·e^{z} = Σ e^{z + log w}: the weights enter as log-offsets inside the stable LSE.
        pos = log1p_sum_exp(alpha * (lam - s) + pos_w.clamp_min(tiny).log(), pos_w > 0) / alpha
        neg = log1p_sum_exp(beta * (s - lam) + neg_w.clamp_min(tiny).log(), neg_w > 0) / beta
        return pos + neg
    if base_loss == "ntxent":
        z = similarity_matrix(x, r, False, "cosine") / hp["temperature"]
        tiny = torch.finfo(z.dtype).tiny
        negatives = masked_logsumexp(z + neg_w.clamp_min(tiny).log(), neg_w > 0)
        return (pos_w * TF.softplus(negatives.unsqueeze(1) - z)).sum(1)
    if base_loss == "mw":
        return _soft_mw(similarity_matrix(x, r, False, "cosine") / hp["temperature"], pos_w, neg_w)
    d = -similarity_matrix(TF.normalize(x, dim=1), TF.normalize(r, dim=1), False, "euclidean")
    pos_c = (pos_w * TF.relu(d - hp["pos_margin"])).sum(1)
    neg_c = (neg_w * TF.relu(hp["neg_margin"] - d)).sum(1)
    return pos_c + neg_c


def _soft_mw(z: Tensor, pos_w: Tensor, neg_w: Tensor, chunk: int = 4096) -> Tensor:
    """Per-anchor Σ_x y(a,x) Σ_{(b,n)} (1-y(b,n)) softplus(z_bn - z_ax), negatives pooled over
    all anchors as in :func:`~losslab.functional.mw_loss`; ``chunk`` positives at a time."""
    rows, cols = torch.where(pos_w > 0)
    neg_mask = neg_w > 0
    neg_z, neg_weight = z[neg_mask], neg_w[neg_mask]
    pos_z, pos_weight = z[rows, cols], pos_w[rows, cols]
    parts = [
        (neg_weight * TF.softplus(neg_z.unsqueeze(0) - pos_z[i : i + chunk].unsqueeze(1))).sum(1)
        for i in range(0, pos_z.shape[0], chunk)
    ]
    pair_loss = pos_weight * torch.cat(parts) if parts else pos_z
    # 0·Σz ties anchors without positives (and empty batches) to the graph.
    return z.new_zeros(z.shape[0]).index_add(0, rows, pair_loss) + 0.0 * z.sum()


def _hyperparameters(fn: str, base_loss: str, hp: dict[str, float]) -> dict[str, float]:
    defaults = _DEFAULTS[base_loss]
    unknown = sorted(set(hp) - set(defaults))
    if unknown:
        raise TypeError(
            f"{fn}: base_loss={base_loss!r} has no hyperparameter {', '.join(map(repr, unknown))}; "
            f"it accepts {', '.join(defaults)}"
        )
    out = {**defaults, **hp}
    for name, value in out.items():
        low_open = name in ("alpha", "beta", "temperature")
        out[name] = check_number(fn, name, value, low=0.0 if low_open else None, low_open=low_open)
    return out


def soft_pair_loss(
    embeddings: Tensor,
    ref_embeddings: Tensor,
    soft_labels: Tensor,
    *,
    base_loss: str = "ms",
    mask: Tensor | None = None,
    **hyperparameters: float,
) -> Tensor:
    """Per-anchor label-aware pair loss ℓ(a) (N,) against references with soft labels.

    Args:
        embeddings: (N, D) anchors; ref_embeddings: (M, D).
        soft_labels: (N, M) in [0, 1]: 1 = positive, 0 = negative, in between = mixed.
        base_loss: ``"ms"`` (alpha=2, beta=50, base=0.5), ``"contrastive"``
            (pos_margin=0, neg_margin=0.5), ``"ntxent"`` (temperature=0.07) or ``"mw"``
            (temperature=0.01).
        mask: optional (N, M) boolean of pairs to use (default all).
    """
    fn = "soft_pair_loss"
    base_loss = check_choice(fn, "base_loss", base_loss, BASE_LOSSES)
    hp = _hyperparameters(fn, base_loss, dict(hyperparameters))
    y = check_tensor(fn, "soft_labels", soft_labels)
    n, m = embeddings.shape[0], ref_embeddings.shape[0]
    if y.shape != (n, m):
        raise ValueError(f"{fn}: soft_labels must have shape ({n}, {m}), got {tuple(y.shape)}")
    valid = torch.ones(n, m, dtype=torch.bool, device=embeddings.device) if mask is None else mask
    return _pair_terms(embeddings, ref_embeddings, y.to(embeddings.dtype), valid, base_loss, hp)


def metrix_pairs(labels: Tensor, *, mix_alpha: float = 2.0) -> MixPairs:
    """Positive-negative mixing pairs: for every anchor with a positive and a negative, a random
    positive ``i``, a random negative ``j`` and ``λ ~ Beta(mix_alpha, mix_alpha)``.

    Returns ``(i, j, λ)``; mix anything with :func:`mix`. Uses torch's global RNG.
    """
    check_number("metrix_pairs", "mix_alpha", mix_alpha, low=0.0, low_open=True)
    y = check_tensor("metrix_pairs", "labels", labels)
    equal = y.unsqueeze(0) == y.unsqueeze(1)
    positive = equal & ~torch.eye(y.shape[0], dtype=torch.bool, device=y.device)
    negative = ~equal
    anchors = torch.where(positive.any(1) & negative.any(1))[0]
    if anchors.numel() == 0:
        empty = torch.zeros(0, dtype=torch.long, device=y.device)
        return empty, empty.clone(), torch.zeros(0, device=y.device)
    # One uniformly random member of each row's mask: argmax of masked uniform noise.
    noise = torch.rand(anchors.numel(), y.shape[0], device=y.device)
    i = torch.where(positive[anchors], noise, -1.0).argmax(1)
    j = torch.where(negative[anchors], noise, -1.0).argmax(1)
    beta = torch.distributions.Beta(torch.tensor(float(mix_alpha)), torch.tensor(float(mix_alpha)))
    lam = beta.sample((anchors.numel(),)).to(y.device)
    return i, j, lam


def mix(values: Tensor, pairs: MixPairs) -> Tensor:
    """``λ·values[i] + (1-λ)·values[j]`` for inputs, features or embeddings (any trailing shape)."""
    i, j, lam = pairs
    shape = (-1,) + (1,) * (values.dim() - 1)
    lam = lam.to(values.dtype).reshape(shape)
    return lam * values[i] + (1.0 - lam) * values[j]


def metrix_loss(
    embeddings: Tensor,
    labels: Tensor,
    *,
    mixed_embeddings: Tensor | None = None,
    pairs: MixPairs | None = None,
    base_loss: str = "ms",
    strength: float = 0.4,
    mix_alpha: float = 2.0,
    **hyperparameters: float,
) -> Tensor:
    r"""Metrix objective :math:`\frac1N\sum_a[\ell(a) + w\,\tilde\ell(a)]` around a pair loss.

    Embedding-level mixup by default: ``pairs`` (or fresh :func:`metrix_pairs`) mix the
    embeddings. For input or feature mixup, mix with :func:`mix` before the network and pass
    the resulting ``mixed_embeddings`` together with the same ``pairs``. The clean part
    equals :func:`~losslab.functional.multi_similarity_loss` (``"ms"``, no mining), PML's
    ``ContrastiveLoss`` summed per anchor (``"contrastive"``), ``nt_xent_loss(...,
    reduction="sum") / N`` (``"ntxent"``) or :func:`~losslab.functional.mw_loss` (``"mw"``).

    Args:
        embeddings: (N, D); labels: (N,).
        mixed_embeddings: (K, D) embeddings of mixed examples, or ``None``.
        pairs: ``(i, j, λ)`` of length K that produced them.
        base_loss: ``"ms"`` | ``"contrastive"`` | ``"ntxent"`` | ``"mw"``; ``hyperparameters``
            go to it.
        strength: w >= 0 (0.4 in the paper's code); mix_alpha: Beta parameter (2.0).
    """
    fn = "metrix_loss"
    w = check_number(fn, "strength", strength, low=0.0)
    base_loss = check_choice(fn, "base_loss", base_loss, BASE_LOSSES)
    hp = _hyperparameters(fn, base_loss, dict(hyperparameters))
    batch = check_pair_batch(fn, embeddings, labels)
    x, y = batch.x, batch.y
    positive, negative = batch.masks()
    clean = _pair_terms(x, x, positive.to(x.dtype), positive | negative, base_loss, hp)
    if mixed_embeddings is None and pairs is None:
        pairs = metrix_pairs(y, mix_alpha=mix_alpha)
    if pairs is None:
        raise ValueError(f"{fn}: mixed_embeddings needs the pairs (i, j, λ) that produced them")
    i, j, lam = pairs
    v = mix(x, pairs) if mixed_embeddings is None else mixed_embeddings.to(x.dtype)
    if v.dim() != 2 or v.shape[0] != i.shape[0] or v.shape[1] != x.shape[1]:
        raise ValueError(
            f"{fn}: mixed_embeddings must have shape ({i.shape[0]}, {x.shape[1]}), one row per "
            f"mixing pair, got {tuple(v.shape)}"
        )
    lam_ = lam.to(x.dtype).unsqueeze(0)
    soft = lam_ * (y.unsqueeze(1) == y[i].unsqueeze(0)) + (1.0 - lam_) * (y.unsqueeze(1) == y[j].unsqueeze(0))
    valid = torch.ones_like(soft, dtype=torch.bool)
    mixed = _pair_terms(x, v, soft, valid, base_loss, hp) if v.shape[0] else torch.zeros_like(clean)
    return (clean + w * mixed).mean() if clean.numel() else x.sum() * 0.0


def utilization(
    queries: Tensor, train: Tensor, *, squared: bool = False, normalize: bool = True
) -> Tensor:
    r"""Mean distance from each query embedding to its nearest training embedding.

    .. math:: u(Q, X) = \frac1{|Q|}\sum_{q\in Q}\min_{x\in X}\lVert f(q) - f(x)\rVert

    Lower means test queries fall in regions the training embeddings (optionally with mixed
    ones) cover. ``normalize`` L2-normalises both sets first (the paper's setting);
    ``squared`` uses the squared distance (the paper's choice is unverified).

    Example:
        >>> import torch
        >>> q, x = torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([[1.0, 0.0]])
        >>> round(utilization(q, x).item(), 6)  # (0 + sqrt 2) / 2
        0.707107
    """
    fn = "utilization"
    for name, t in (("queries", queries), ("train", train)):
        check_tensor(fn, name, t)
        if t.dim() != 2 or t.shape[0] == 0:
            raise ValueError(f"{fn}: {name} must be a non-empty 2-D tensor, got {tuple(t.shape)}")
    if queries.shape[1] != train.shape[1]:
        raise ValueError(
            f"{fn}: queries and train must share embedding_dim, "
            f"got {queries.shape[1]} and {train.shape[1]}"
        )
    q, x = (TF.normalize(queries, dim=1), TF.normalize(train, dim=1)) if normalize else (queries, train)
    d = -similarity_matrix(q, x, False, "sqeuclidean" if squared else "euclidean")
    return d.amin(1).mean()


__all__ = ["metrix_loss", "metrix_pairs", "mix", "soft_pair_loss", "utilization"]
