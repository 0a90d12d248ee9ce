"""Noise-robust losses: worked values of spec A§2–A§3, slow references in the official code's
semantics, identities, invariances, gradients and the stateful ALDR-KL module."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import losslab
import losslab.functional as LF

E = torch.tensor([[2.0, 1.0, 0.0]], dtype=torch.float64)
Y0, Y2 = torch.tensor([0]), torch.tensor([2])
A_CODE = math.log(1e-4)


def _batch(n=9, c=5, scale=3.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, generator=g, dtype=torch.float64) * scale
    t = torch.randint(0, c, (n,), generator=g)
    return x, t


def _np_softmax(v):
    e = np.exp(v - v.max())
    return e / e.sum()


# --- worked values (spec A§2, A§3) -----------------------------------------------------------

@pytest.mark.parametrize(
    "fn,kwargs,target,value",
    [
        (LF.generalized_cross_entropy, {"q": 0.5}, Y0, 0.368754),
        (LF.generalized_cross_entropy, {"q": 0.7}, Y0, 0.354614),
        (LF.generalized_cross_entropy, {"q": 1.0}, Y0, 0.334759),
        (LF.generalized_cross_entropy, {"q": 0.7, "truncate_k": 0.5}, Y0, 0.354614),
        (LF.generalized_cross_entropy, {"q": 0.7, "truncate_k": 0.5}, Y2, 0.549183),
        (LF.generalized_cross_entropy, {"q": 0.7}, Y2, 1.163737),
        (LF.mean_absolute_error, {}, Y0, 0.669518),
        (LF.reverse_cross_entropy, {}, Y0, 3.083245),
        (LF.reverse_cross_entropy, {"log_zero": -4.0}, Y0, 1.339036),
        (LF.symmetric_cross_entropy, {}, Y0, 3.124005),
        (LF.symmetric_cross_entropy, {"log_zero": -4.0}, Y0, 1.379797),
        (LF.symmetric_cross_entropy, {"alpha": 6.0, "beta": 0.1}, Y0, 2.753960),
        (LF.normalized_cross_entropy, {}, Y0, 0.096525),
        (LF.active_passive, {}, Y0, 3.179769),
        (LF.active_passive, {"alpha": 10.0, "beta": 0.1}, Y0, 1.273571),
        (LF.active_passive, {"alpha": 1.0, "beta": 10.0}, Y0, 30.928972),
        (LF.normalized_generalized_cross_entropy, {"q": 0.7}, Y0, 0.146922),
        (LF.ldr_kl, {"margin": 0.1, "lam": 1.0}, Y0, -0.656405),
        (LF.ldr_kl, {"margin": 0.1, "lam": 10.0}, Y0, -0.903295),
        (LF.ldr_kl, {"margin": 0.0, "lam": 1.0}, Y0, -0.691006),
        (LF.ldr_kl, {"margin": 2.0, "lam": 1.0}, Y0, 0.452832),
        (LF.ldr_kl, {"margin": 0.1, "lam": 10.0, "normalize": "softplus_mean"}, Y0, -0.469688),
        (LF.ldr_kl, {"margin": 2.0, "lam": 1.0, "normalize": "softplus_mean"}, Y0, 0.943083),
        (LF.aldr_kl, {}, Y0, -0.903275),
        (LF.aldr_kl, {"lam0": 1.0}, Y0, -0.640523),
        (LF.aldr_kl, {"normalize": "l1_mean"}, Y0, -0.903275),  # E is its own L1-normalisation
    ],
)
def test_worked_values(fn, kwargs, target, value):
    assert fn(E, target, **kwargs).item() == pytest.approx(value, abs=1e-6)


def test_aldr_worked_lambda_values():
    loss, lam = LF.aldr_kl_step(E, Y0, None, lam0=10.0)
    assert lam.item() == pytest.approx(9.984868, abs=1e-6)
    _, lam = LF.aldr_kl_step(E, Y0, None, lam0=1.0)
    assert lam.item() == pytest.approx(0.878847, abs=1e-6)
    # penalty -(α log K / 2λ₀)(λ-λ₀)² = -0.016125 for λ₀=1: loss = LDR-KL(λ) + penalty
    ldr = LF.ldr_kl(E, Y0, lam=lam.item(), margin=0.1).item()
    assert LF.aldr_kl(E, Y0, lam0=1.0).item() - ldr == pytest.approx(-0.016125, abs=1e-6)


def test_softplus_mean_normalised_logits_match_spec():
    from losslab.functional.logits.ldr import normalize_scores

    got = normalize_scores(E, "softplus_mean")
    torch.testing.assert_close(got, torch.tensor([[1.543737, 0.953173, 0.503090]],
                                                 dtype=torch.float64), atol=1e-6, rtol=0)
    x, _ = _batch(scale=5.0)
    sp = TF.softplus(x)
    torch.testing.assert_close(normalize_scores(x, "softplus_mean"), sp / sp.mean(1, keepdim=True))
    very_negative = torch.full((2, 4), -1e4).requires_grad_()
    out = normalize_scores(very_negative * torch.tensor([1.0, 1.5, 2.0, 3.0]), "softplus_mean")
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(very_negative.grad).all()


# --- slow references in the official code's semantics ----------------------------------------

def _reference_rows(x, t, name, **kw):
    """Per-sample loops transcribing the formulas as the official code computes them
    (APL/SCE: probabilities clamped to [1e-7, 1]; LDR: log-mean-exp of margin-shifted
    differences)."""
    out = []
    for row, y in zip(x.numpy(), t.numpy(), strict=True):
        k = len(row)
        p = np.clip(_np_softmax(row), 1e-7, 1.0)
        onehot = np.eye(k)[y]
        if name == "gce":
            val = (1 - p[y] ** kw["q"]) / kw["q"]
        elif name == "sce":
            rce = -(p * np.log(np.clip(onehot, 1e-4, 1.0))).sum()
            val = kw["alpha"] * -np.log(p[y]) + kw["beta"] * rce
        elif name == "nce":
            logp = np.log(_np_softmax(row))
            val = -logp[y] / -logp.sum()
        elif name == "ngce":
            val = (1 - p[y] ** kw["q"]) / (k - (p ** kw["q"]).sum())
        elif name == "ldr":
            d = row - row[y] + kw["margin"] * (1 - onehot)
            val = kw["lam"] * np.log(np.mean(np.exp(d / kw["lam"])))
        out.append(val)
    return np.array(out)


@pytest.mark.parametrize(
    "name,fn,kwargs,rtol",
    [
        ("gce", LF.generalized_cross_entropy, {"q": 0.7}, 1e-6),
        ("gce", LF.generalized_cross_entropy, {"q": 0.3}, 1e-6),
        ("sce", LF.symmetric_cross_entropy, {"alpha": 0.1, "beta": 1.0}, 1e-5),
        ("nce", LF.normalized_cross_entropy, {}, 1e-10),
        ("ngce", LF.normalized_generalized_cross_entropy, {"q": 0.7}, 1e-6),
        ("ldr", LF.ldr_kl, {"lam": 10.0, "margin": 0.1}, 1e-10),
        ("ldr", LF.ldr_kl, {"lam": 0.5, "margin": 2.0}, 1e-10),
    ],
)
def test_matches_official_semantics_reference(name, fn, kwargs, rtol):
    x, t = _batch(n=12, c=6, scale=2.0, seed=11)
    ours = fn(x, t, reduction="none", **kwargs).numpy()
    np.testing.assert_allclose(ours, _reference_rows(x, t, name, **kwargs), rtol=rtol)


# --- identities ------------------------------------------------------------------------------

def test_identities():
    x, t = _batch()
    ce = LF.cross_entropy(x, t, reduction="none")
    p = torch.softmax(x, 1)
    p_y = p.gather(1, t[:, None]).squeeze(1)
    mae = LF.mean_absolute_error(x, t, reduction="none")
    torch.testing.assert_close(mae, (TF.one_hot(t, 5) - p).abs().sum(1))  # ‖e_y - p‖₁
    torch.testing.assert_close(LF.generalized_cross_entropy(x, t, q=1.0, reduction="none"),
                               mae / 2)
    # q → 0 tends to CE: (1 - p^q)/q = -log p - q (log p)²/2 + ...
    torch.testing.assert_close(LF.generalized_cross_entropy(x, t, q=1e-5, reduction="none"),
                               ce - 1e-5 * ce**2 / 2, rtol=1e-7, atol=1e-9)
    torch.testing.assert_close(LF.reverse_cross_entropy(x, t, reduction="none"),
                               -A_CODE / 2 * mae)
    torch.testing.assert_close(LF.symmetric_cross_entropy(x, t, alpha=0.3, beta=2.0),
                               0.3 * LF.cross_entropy(x, t) + 2.0 * LF.reverse_cross_entropy(x, t))
    nce = LF.normalized_cross_entropy(x, t, reduction="none")
    torch.testing.assert_close(LF.active_passive(x, t, alpha=2.0, beta=0.5),
                               2.0 * nce.mean() + 0.5 * LF.reverse_cross_entropy(x, t))
    torch.testing.assert_close(LF.active_passive(x, t, passive="mae"),
                               (nce + mae).mean())
    torch.testing.assert_close(losslab.get_loss("nce+mae")(x, t), (nce + mae).mean())
    from losslab.functional.logits.normalized import nce_and_mae

    torch.testing.assert_close(nce_and_mae(x, t, alpha=0.5, beta=3.0), (0.5 * nce + 3 * mae).mean())
    ngce = LF.normalized_generalized_cross_entropy(x, t, q=0.5, reduction="none")
    torch.testing.assert_close(LF.active_passive(x, t, active="ngce", q=0.5, reduction="none"),
                               ngce - A_CODE * (1 - p_y))
    torch.testing.assert_close(LF.ldr_kl(x, t, lam=1.0, margin=0.0, reduction="none"),
                               ce - math.log(5))


def test_normalised_losses_sum_to_one_over_labels():
    x, _ = _batch(n=4)
    for fn in [LF.normalized_cross_entropy, LF.normalized_generalized_cross_entropy]:
        total = sum(fn(x, torch.full((4,), j), reduction="none") for j in range(5))
        torch.testing.assert_close(total, torch.ones(4, dtype=torch.float64))


def test_ldr_kl_temperature_limits():
    x, t = _batch()
    c = 0.3
    d = x - x.gather(1, t[:, None]) + c * (1 - TF.one_hot(t, 5).double())
    hinge = d.max(1).values  # includes d_y = 0, i.e. max(0, max_{k≠y} ...)
    # λ·log mean exp(d/λ) lies in [max d - λ log K, max d]
    sharp = LF.ldr_kl(x, t, lam=1e-3, margin=c, reduction="none")
    assert bool((sharp <= hinge + 1e-12).all())
    assert bool((sharp >= hinge - 1e-3 * math.log(5) - 1e-12).all())
    torch.testing.assert_close(LF.ldr_kl(x, t, lam=1e5, margin=c, reduction="none"), d.mean(1),
                               atol=1e-3, rtol=0)


def test_ldr_gradient_is_softmax_of_d_minus_onehot():
    x, t = _batch()
    lam, c = 2.0, 0.1
    z = x.clone().requires_grad_()
    LF.ldr_kl(z, t, lam=lam, margin=c, reduction="sum").backward()
    d = x - x.gather(1, t[:, None]) + c * (1 - TF.one_hot(t, 5).double())
    torch.testing.assert_close(z.grad, torch.softmax(d / lam, 1) - TF.one_hot(t, 5).double())


def test_truncated_gce_has_zero_gradient_on_pruned_rows():
    x = E.repeat(2, 1).clone().requires_grad_()
    t = torch.tensor([0, 2])  # p_y = 0.665 > k keeps, 0.090 ≤ k prunes
    LF.generalized_cross_entropy(x, t, q=0.7, truncate_k=0.5, reduction="sum").backward()
    assert torch.count_nonzero(x.grad[1]) == 0 and torch.count_nonzero(x.grad[0]) == 3


SHIFT_INVARIANT = [
    (LF.generalized_cross_entropy, {}), (LF.generalized_cross_entropy, {"truncate_k": 0.3}),
    (LF.mean_absolute_error, {}), (LF.reverse_cross_entropy, {}),
    (LF.symmetric_cross_entropy, {}), (LF.normalized_cross_entropy, {}),
    (LF.normalized_generalized_cross_entropy, {}), (LF.active_passive, {}),
    (LF.ldr_kl, {}), (LF.aldr_kl, {"lam0": 1.0}),
]


@pytest.mark.parametrize("fn,kwargs", SHIFT_INVARIANT)
def test_shift_invariance(fn, kwargs):
    x, t = _batch()
    torch.testing.assert_close(fn(x - 6.0, t, reduction="none", **kwargs),
                               fn(x, t, reduction="none", **kwargs))


def test_softplus_normalisation_breaks_shift_invariance():
    x, t = _batch()
    a = LF.ldr_kl(x, t, normalize="softplus_mean")
    assert not torch.allclose(a, LF.ldr_kl(x + 3.0, t, normalize="softplus_mean"))


# --- gradients and extremes ------------------------------------------------------------------

GRADCHECK = SHIFT_INVARIANT[:-2] + [
    (LF.ldr_kl, {"lam": 0.7, "margin": 0.5}),
    (LF.ldr_kl, {"lam": 2.0, "normalize": "softplus_mean"}),
    (LF.ldr_kl, {"lam": 2.0, "normalize": "l1_mean"}),
    (LF.active_passive, {"active": "ngce", "passive": "mae"}),
]


@pytest.mark.parametrize("fn,kwargs", GRADCHECK)
def test_gradcheck(fn, kwargs):
    x, t = _batch(n=4, c=3, scale=1.0, seed=7)
    x.requires_grad_()
    assert torch.autograd.gradcheck(lambda z: fn(z, t, reduction="none", **kwargs), (x,))


def test_aldr_gradient_is_ldr_gradient_at_the_updated_lambda():
    # λ is a block-coordinate variable (no gradient through it), as in the official code.
    x, t = _batch(n=5, seed=8)
    prev = torch.tensor([10.0, 3.0, 0.5, 7.0, 10.0], dtype=torch.float64)
    z = x.clone().requires_grad_()
    loss, lam = LF.aldr_kl_step(z, t, prev, reduction="none")
    loss.sum().backward()
    d = x - x.gather(1, t[:, None]) + 0.1 * (1 - TF.one_hot(t, 5).double())
    expected = torch.softmax(d / lam.to(x.dtype)[:, None], 1) - TF.one_hot(t, 5)
    torch.testing.assert_close(z.grad, expected, atol=1e-6, rtol=1e-5)


ALL_NAMES = ["gce", "mae", "sce", "rce", "nce", "ngce", "nce+rce", "nce+mae", "ldr-kl",
             "aldr-kl"]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("name", ALL_NAMES)
def test_extreme_logits_finite(name, dtype):
    g = torch.Generator().manual_seed(1)
    x = (torch.randn(6, 5, generator=g).sign() * 1e4).to(dtype)
    x[0] = -1e4  # an all-very-negative row
    x.requires_grad_()
    t = torch.randint(0, 5, (6,), generator=g)
    for kwargs in [{}, {"normalize": "softplus_mean"}] if "ldr" in name else [{}]:
        x.grad = None
        out = losslab.get_loss(name, **kwargs)(x, t)
        out.backward()
        assert torch.isfinite(out) and torch.isfinite(x.grad).all(), kwargs


@pytest.mark.parametrize("name", ALL_NAMES)
def test_invalid_hyperparameters_raise(name):
    info = {i.name: i for i in losslab.list_losses()}[name]
    x, t = _batch(n=2)
    for bad in info.invalid_hyperparameters:
        with pytest.raises(ValueError):
            info.function(x, t, **bad)
        with pytest.raises(ValueError):
            info.module(**bad)


# --- the stateful ALDR-KL module ------------------------------------------------------------

def _aldr_numpy_step(z, y, lam_prev, lam0=10.0, alpha=2.0, c=0.1):
    """One visit exactly as in the spec's transcription of ALDRLoss_V1 (no normalisation)."""
    k = len(z)
    pi = _np_softmax(z / lam_prev) + 1e-5
    pi = pi / pi.sum()
    kl = (pi * np.log(k * pi)).sum()
    lam = lam0 - lam0 * kl / (alpha * np.log(k))
    d = z - z[y] + c * (1 - np.eye(k)[y])
    m = (d / lam).max()
    ldr = lam * (np.log(np.mean(np.exp(d / lam - m))) + m)
    return ldr - 0.5 * alpha * np.log(k) / lam0 * (lam - lam0) ** 2, lam


def test_aldr_module_updates_lambda_across_visits():
    x, t = _batch(n=4, c=5, scale=2.0, seed=9)
    ids = torch.tensor([3, 0, 7, 5])
    mod = losslab.nn.ALDRKL(num_samples=8, lam0=1.0, reduction="none")
    lam = {i: 1.0 for i in range(8)}
    for visit in range(3):
        out = mod(x * (1 + visit), t, ids)  # logits change between visits
        for row in range(4):
            ref, lam[int(ids[row])] = _aldr_numpy_step(
                (x[row] * (1 + visit)).numpy(), int(t[row]), lam[int(ids[row])], lam0=1.0)
            assert out[row].item() == pytest.approx(ref, abs=1e-6)
        torch.testing.assert_close(mod.lam, torch.tensor([lam[i] for i in range(8)],
                                                         dtype=torch.float32))
    assert mod.lam[1].item() == 1.0  # never visited
    assert not torch.allclose(mod(x, t, ids), LF.aldr_kl(x, t, lam0=1.0, reduction="none"))


def test_aldr_module_without_ids_eval_ignore_and_growth():
    x, t = _batch(n=4, seed=10)
    mod = losslab.get_loss("aldr-kl", lam0=2.0)
    torch.testing.assert_close(mod(x, t), LF.aldr_kl(x, t, lam0=2.0))  # generic callers
    assert mod.lam.numel() == 0
    t_ign = t.clone()
    t_ign[1] = -100
    mod(x, t_ign, torch.tensor([0, 9, 4, 2]))  # num_samples=None: the buffer grows to 10
    assert mod.lam.numel() == 10 and mod.lam[9].item() == 2.0  # ignored row keeps λ₀
    assert mod.lam[0].item() < 2.0
    mod.eval()
    before = mod.lam.clone()
    mod(x, t, torch.tensor([0, 1, 2, 3]))
    assert torch.equal(mod.lam, before)
    fixed = losslab.nn.ALDRKL(num_samples=4)
    with pytest.raises(ValueError, match="sample_ids"):
        fixed(x, t, torch.tensor([0, 1, 2, 4]))
    with pytest.raises(ValueError, match="sample_ids"):
        fixed(x, t, torch.tensor([0, 1]))
    with pytest.raises(TypeError, match="sample_ids"):
        fixed(x, t, torch.tensor([0.0, 1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="num_samples"):
        losslab.nn.ALDRKL(num_samples=0)
    info = {i.name: i for i in losslab.list_losses()}["aldr-kl"]
    assert info.extra_inputs == ("sample_ids",)
    restored = losslab.nn.ALDRKL(lam0=2.0)
    restored.load_state_dict(mod.state_dict())  # the grown buffer's size is adopted
    assert torch.equal(restored.lam, mod.lam)


def test_docstring_examples_run():
    import doctest

    import losslab.functional.logits.ldr as ldr
    import losslab.functional.logits.normalized as normalized
    import losslab.functional.logits.robust as robust

    for module in [robust, normalized, ldr]:  # ldr holds the ALDRKL module's example too
        assert doctest.testmod(module).failed == 0, module.__name__


def test_aldr_functional_state_in_place_and_spatial_ids():
    g = torch.Generator().manual_seed(12)
    x = torch.randn(2, 4, 3, generator=g, dtype=torch.float64)  # (N, C, d1)
    t = torch.randint(0, 4, (2, 3), generator=g)
    ids = torch.arange(6).reshape(2, 3)
    state = torch.full((6,), 10.0, dtype=torch.float64)
    frozen = LF.aldr_kl(x, t, sample_ids=ids, lam_state=state, update_state=False,
                        reduction="none")
    assert torch.equal(state, torch.full((6,), 10.0, dtype=torch.float64))
    torch.testing.assert_close(frozen, LF.aldr_kl(x, t, reduction="none"))
    LF.aldr_kl(x, t, sample_ids=ids, lam_state=state)
    flat_x, flat_t = x.movedim(1, -1).reshape(-1, 4), t.reshape(-1)
    _, expected = LF.aldr_kl_step(flat_x, flat_t, None)
    torch.testing.assert_close(state, expected.to(state.dtype))
    with pytest.raises(ValueError, match="aldr_kl: lam_state needs sample_ids"):
        LF.aldr_kl(x, t, lam_state=state)


# --- review fixes ----------------------------------------------------------------------------

def test_aldr_nan_batch_does_not_poison_the_state():
    x, t = _batch(n=4, seed=13)
    mod = losslab.nn.ALDRKL(num_samples=4)
    ids = torch.arange(4)
    bad = x.clone()
    bad[1, 0] = float("nan")
    out = mod(bad, t, ids)
    assert torch.isnan(out)  # the loss reports the bad input ...
    lam = mod.lam.clone()
    assert torch.isfinite(lam).all() and lam[1].item() == 10.0  # ... the state keeps λ_prev
    _, expected = LF.aldr_kl_step(x, t, None)
    torch.testing.assert_close(lam[[0, 2, 3]], expected[[0, 2, 3]].float())
    assert torch.isfinite(mod(x, t, ids))  # and the next batch works
    assert mod.lam[1].item() < 10.0


def test_aldr_lambda_errors_name_the_callers_argument():
    x, t = _batch(n=4, seed=14)
    state = torch.full((4,), 10.0)
    state[2] = float("nan")
    with pytest.raises(ValueError, match="aldr_kl: lam_state must be finite and positive"):
        LF.aldr_kl(x, t, sample_ids=torch.arange(4), lam_state=state)
    with pytest.raises(ValueError, match="aldr_kl: lam_prev must be finite and positive"):
        LF.aldr_kl_step(x, t, torch.tensor([1.0, float("inf"), 1.0, 1.0]))
    with pytest.raises(ValueError, match="lam_prev must be finite and positive"):
        LF.aldr_kl_step(x, t, torch.tensor([1.0, 0.0, 1.0, 1.0]))


def test_aldr_integer_lambda_is_rejected():
    x, t = _batch(n=4, seed=15)
    with pytest.raises(TypeError, match="aldr_kl: lam_prev must be a floating-point tensor"):
        LF.aldr_kl_step(x, t, torch.full((4,), 10))
    # half-precision λ is accepted and returned in at least float32
    _, lam = LF.aldr_kl_step(x.float(), t, torch.full((4,), 10.0, dtype=torch.float16))
    assert lam.dtype == torch.float32


def test_aldr_state_arguments_are_keyword_only_and_validated():
    x, t = _batch(n=4, seed=16)
    ids, state = torch.arange(4), torch.full((4,), 10.0)
    with pytest.raises(TypeError):
        LF.aldr_kl(x, t, ids, state)  # positional state arguments
    with pytest.raises(TypeError, match="aldr_kl: update_state must be a bool, got int"):
        LF.aldr_kl(x, t, sample_ids=ids, lam_state=state, update_state=0)
    assert torch.equal(state, torch.full((4,), 10.0))
    info = {i.name: i for i in losslab.list_losses()}["aldr-kl"]
    assert info.defaults == {"lam0": 10.0, "alpha": 2.0, "margin": 0.1, "normalize": "none"}
    with pytest.raises(TypeError, match="ALDRKL: sample_ids"):
        losslab.nn.ALDRKL(sample_ids=ids)
    assert "sample_ids" not in repr(losslab.nn.ALDRKL())


def test_aldr_growth_validates_ids_before_allocating():
    x, t = _batch(n=4, seed=17)
    mod = losslab.nn.ALDRKL()
    with pytest.raises(ValueError, match="aldr_kl: sample_ids must have the target's shape"):
        mod(x, t, torch.tensor([0, 1, 10**7]))  # wrong shape: nothing may be allocated
    assert mod.lam.numel() == 0
    with pytest.raises(ValueError, match=r"aldr_kl: sample_ids must lie in \[0, inf\)"):
        mod(x, t, torch.tensor([0, -1, 2, 3]))
    with pytest.raises(ValueError, match="aldr_kl: target"):
        mod(x, t + 10, torch.tensor([0, 1, 2, 10**7]))  # a bad target is reported first
    assert mod.lam.numel() == 0
    mod(x, t, torch.tensor([0, 1, 2, 5]))
    assert mod.lam.numel() == 6


@pytest.mark.parametrize("fn,kwargs,name", [
    (LF.ldr_kl, {"lam": 1e300}, "lam"),
    (LF.ldr_kl, {"lam": 1e-300}, "lam"),
    (LF.ldr_kl, {"margin": 1e300}, "margin"),
    (LF.aldr_kl, {"lam0": 1e-300}, "lam0"),
    (LF.aldr_kl, {"lam0": 1e300}, "lam0"),
    (LF.symmetric_cross_entropy, {"alpha": 1e300}, "alpha"),
    (LF.active_passive, {"beta": 1e300}, "beta"),
    (LF.reverse_cross_entropy, {"log_zero": -1e300}, "log_zero"),
])
def test_hyperparameters_outside_float32_are_rejected(fn, kwargs, name):
    # They used to become inf or 0 inside the loss and give NaN (inf·0, 0/0).
    x, t = _batch(n=3)
    x[0] = torch.tensor([30.0, 0.0, 0.0, 0.0, 0.0])  # p_y → 1 for y = 0: log p_y = 0 exactly
    t[0] = 0
    with pytest.raises(ValueError, match=f"{fn.__name__}: {name} must be 0 or have magnitude"):
        fn(x.float(), t, **kwargs)


@pytest.mark.parametrize("lam", [1e2, 1e4, 1e6])
def test_ldr_large_lambda_float32_matches_float64(lam):
    # logsumexp(d/λ) - log C cancelled for large λ (float32 error 0.16 at λ = 1e6).
    x, t = _batch(n=32, c=7, seed=18)
    v64 = LF.ldr_kl(x, t, lam=lam, reduction="none")
    v32 = LF.ldr_kl(x.float(), t, lam=lam, reduction="none")
    torch.testing.assert_close(v32.double(), v64, rtol=1e-5, atol=1e-5)
    # λ → ∞ limit: mean_k d_k
    d = x - x.gather(1, t[:, None]) + 0.1 * (1 - TF.one_hot(t, 7).double())
    if lam == 1e6:
        torch.testing.assert_close(v64, d.mean(1), rtol=0, atol=1e-4)
