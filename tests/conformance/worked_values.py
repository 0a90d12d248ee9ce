"""Worked values and identities for every registered loss of kind "logits" and "value".

Issue 2 §5: the conformance suite checks each loss's value on a hand-worked example and its
identities, and a loss joins by being registered. ``test_worked_values.py`` fails for a
registered loss that has no entry in ``EXAMPLES`` — add one here.

Conventions
-----------
* Numbers are literals. Each ``source`` names where the expected value comes from: a spec
  section and its evidence tag (``A§2.3 [code]`` = ``/work/shared/spec/losses_A.md`` §2.3,
  ``B§…`` = ``losses_B.md``), printed at full precision by ``spec/examples/*.py``; or
  ``hand:`` with the arithmetic, recomputed independently in numpy from the spec's formula
  (never by calling losslab).
* E is the spec's running example: z = (2, 1, 0), y = 0, K = 3, so
  p = (0.665241, 0.244728, 0.090031), p_y = 0.6652409558, CE = −log p_y = 0.4076059644.
* ``tensors`` are extra tensor keyword arguments (``teacher_logits``, ``weight``, ``prior``…);
  ``sample_ids`` is converted to int64, every other list to float64. A target of Python ints is
  int64 (class indices), of floats float64 (real values for kind "value", or class
  probabilities).
* Identities compare ``left`` with ``Σ coef·right + offset`` under ``reduction="none"``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

Nested = Any  # a (nested) list of numbers


@dataclass(frozen=True)
class Example:
    loss: str
    input: Nested
    target: Nested
    expected: float
    source: str
    hp: dict[str, Any] = field(default_factory=dict)
    tensors: dict[str, Nested] = field(default_factory=dict)
    reduction: str = "mean"
    xfail: str | None = None  # reason, only when the spec is sure and the code is wrong


@dataclass(frozen=True)
class Call:
    loss: str
    hp: dict[str, Any] = field(default_factory=dict)
    tensors: dict[str, Nested] = field(default_factory=dict)
    input: Nested | None = None  # None: the identity's input
    target: Nested | None = None  # None: the identity's target


@dataclass(frozen=True)
class Identity:
    name: str
    source: str
    left: Call
    right: tuple[tuple[float, Call], ...]
    input: Nested
    target: Nested
    offset: float = 0.0


E = [[2.0, 1.0, 0.0]]
A_CODE = math.log(1e-4)  # SCE/RCE official log 0 := ln(1e-4)


def _softmax(rows: Nested, temperature: float = 1.0) -> Nested:
    """Plain-Python softmax, used only to build soft-target literals for identities."""
    out = []
    for row in rows:
        m = max(row)
        e = [math.exp((v - m) / temperature) for v in row]
        s = sum(e)
        out.append([v / s for v in e])
    return out


def _ex(loss: str, expected: float, source: str, **kw: Any) -> Example:
    kw.setdefault("input", E)
    kw.setdefault("target", [0])
    return Example(loss=loss, expected=expected, source=source, **kw)


# =====================================================================================
# Worked examples
# =====================================================================================

EXAMPLES: list[Example] = [
    # ---------------------------------------------------------------- softmax family
    _ex("ce", 0.40760596444438046, "A§0 [code]: CE on E = LSE − z_y = 2.407606 − 2"),
    _ex(
        "ce",
        0.4081856210923832,
        "A§4.2 [code]: CE + 1e-4·LSE² = 0.407606 + 1e-4·2.407606²",
        hp={"z_loss": 1e-4},
    ),
    _ex(
        "ce",
        0.5076059644443804,
        "hand: (1−ε)·CE + ε/K·Σ−log p_k = 0.9·0.407606 + 0.1/3·(0.407606+1.407606+2.407606)",
        hp={"label_smoothing": 0.1},
    ),
    _ex("ce", 0.6802696706417346, "hand: −log softmax(z/2)_0 = log(1+e^−0.5+e^−1)", hp={"temperature": 2.0}),
    _ex("comp-sum", 0.5032147244080551, "A§1.1 [mem, exact algebra] τ=0: 1/p_y − 1", hp={"tau": 0.0}),
    _ex("comp-sum", 0.4521131494350379, "A§1.1 τ=0.5: 2(p_y^−0.5 − 1)", hp={"tau": 0.5}),
    _ex("comp-sum", 0.40760596444438046, "A§1.1 τ=1: −log p_y", hp={"tau": 1.0}),
    _ex("comp-sum", 0.3687539048018269, "A§1.1 τ=1.5: (1 − p_y^0.5)/0.5", hp={"tau": 1.5}),
    _ex("comp-sum", 0.354613557821289, "A§1.1 τ=1.7: (1 − p_y^0.7)/0.7", hp={"tau": 1.7}),
    _ex("comp-sum", 0.3347590442251782, "A§1.1 τ=2: 1 − p_y", hp={"tau": 2.0}),
    _ex("comp-sum", 0.2787272353799008, "A§1.1 τ=3: (1 − p_y²)/2", hp={"tau": 3.0}),
    _ex(
        "z-loss",
        0.5870752836422526,
        "A§4.1 [sec]: ẑ_y = 1.224745; softplus(1 − ẑ_y)",
        hp={"a": 1.0, "b": 1.0},
    ),
    _ex("z-loss", 0.2576088645921615, "A§4.1 [sec] a=1, b=0", hp={"a": 1.0, "b": 0.0}),
    _ex("z-loss", 12.25227712166554, "A§4.1 [sec] a=0.1, b=10", hp={"a": 0.1, "b": 10.0}),
    _ex("z-loss", 0.7793583246636357, "A§4.1 [sec] a=5, b=2", hp={"a": 5.0, "b": 2.0}),
    # ---------------------------------------------------------------- robust family
    _ex("gce", 0.3687539048018269, "A§2.1 [sec] q=0.5", hp={"q": 0.5}),
    _ex("gce", 0.354613557821289, "A§2.1 [sec] q=0.7", hp={"q": 0.7}),
    _ex("gce", 0.3347590442251782, "A§2.1 [sec] q=1.0", hp={"q": 1.0}),
    _ex(
        "gce",
        0.354613557821289,
        "A§2.1 truncated, y=0: p_y=0.665 > k=0.5 so L_q(p_y)",
        hp={"q": 0.7, "truncate_k": 0.5},
    ),
    _ex(
        "gce",
        0.5491825618964884,
        "A§2.1 truncated, y=2: p_y=0.090 ≤ k so L_q(k) = (1 − 0.5^0.7)/0.7",
        hp={"q": 0.7, "truncate_k": 0.5},
        target=[2],
    ),
    _ex("mae", 0.6695180884503564, "A§2.2 [code] L1 form ‖e_y − p‖₁ = 2(1 − p_y)"),
    _ex("rce", 3.083244739911319, "A§2.3 [code] −A(1 − p_y), A = ln 1e-4"),
    _ex("rce", 1.3390361769007129, "A§2.3 [mem] paper A = −4: 4(1 − p_y)", hp={"log_zero": -4.0}),
    _ex(
        "sce",
        3.124005336355757,
        "A§2.3 [code] α=0.1, β=1: 0.1·CE + 9.210340·(1 − p_y)",
        hp={"alpha": 0.1, "beta": 1.0},
    ),
    _ex("sce", 2.7539602606574145, "A§2.3 [code] α=6, β=0.1", hp={"alpha": 6.0, "beta": 0.1}),
    _ex(
        "sce",
        1.3797967733451508,
        "A§2.3 [mem] α=0.1, β=1, A=−4",
        hp={"alpha": 0.1, "beta": 1.0, "log_zero": -4.0},
    ),
    _ex("nce", 0.09652463704103757, "A§2.4 [code]: log p_y / Σ log p_k = −0.407606/−4.222818"),
    _ex("nce+rce", 3.1797693769523567, "A§2.4 [code] α=1, β=1", hp={"alpha": 1.0, "beta": 1.0}),
    _ex("nce+rce", 1.2735708444015077, "A§2.4 [code] α=10, β=0.1", hp={"alpha": 10.0, "beta": 0.1}),
    _ex("nce+rce", 30.928972036154228, "A§2.4 [code] α=1, β=10", hp={"alpha": 1.0, "beta": 10.0}),
    _ex(
        "nce+rce", 3.2301672180070913, "hand: NGCE(q=0.7) + RCE = 0.146922 + 3.083245", hp={"active": "ngce"}
    ),
    _ex("nce+mae", 0.766042725491394, "hand: NCE + 2(1 − p_y) = 0.096525 + 0.669518 (A§2.4 formula)"),
    _ex("ngce", 0.14692247809577208, "A§2.4 [code] q=0.7: (1 − p_y^q)/(K − Σ p_k^q)"),
    _ex("ldr-kl", -0.6564049986321574, "A§3.1 [code] c=0.1, λ=1", hp={"margin": 0.1, "lam": 1.0}),
    _ex("ldr-kl", -0.9032948702783306, "A§3.1 [code] c=0.1, λ=10", hp={"margin": 0.1, "lam": 10.0}),
    _ex("ldr-kl", -0.6910063242237294, "A§3.1 [code] c=0, λ=1 (= CE − ln 3)", hp={"margin": 0.0, "lam": 1.0}),
    _ex("ldr-kl", 0.4528324252639413, "A§3.1 [code] c=2, λ=1", hp={"margin": 2.0, "lam": 1.0}),
    _ex(
        "ldr-kl",
        -0.469688453974062,
        "A§3.1 [code] softplus-mean normalised, c=0.1, λ=10",
        hp={"margin": 0.1, "lam": 10.0, "normalize": "softplus_mean"},
    ),
    _ex(
        "ldr-kl",
        0.9430826698241599,
        "A§3.1 [code] softplus-mean normalised, c=2, λ=1",
        hp={"margin": 2.0, "lam": 1.0, "normalize": "softplus_mean"},
    ),
    _ex(
        "aldr-kl",
        -0.9032746471457732,
        "A§3.2 [code] first visit, λ₀=10, α=2, c=0.1",
        hp={"lam0": 10.0, "alpha": 2.0, "margin": 0.1},
        tensors={"sample_ids": [0]},
    ),
    _ex(
        "aldr-kl",
        -0.6405231345710197,
        "A§3.2 [code] first visit, λ₀=1, α=2, c=0.1",
        hp={"lam0": 1.0, "alpha": 2.0, "margin": 0.1},
        tensors={"sample_ids": [0]},
    ),
    _ex(
        "aldr-kl",
        -0.9032746471457732,
        "A§3.2 [code] with the code's L1-mean normalisation (z unchanged on E)",
        hp={"lam0": 10.0, "alpha": 2.0, "margin": 0.1, "normalize": "l1_mean"},
        tensors={"sample_ids": [0]},
    ),
    # ---------------------------------------------------------------- imbalance / overlap
    _ex(
        "focal",
        0.04567779896788493,
        "hand (no spec number): (1 − p_y)^2·CE = 0.334759²·0.407606",
        hp={"gamma": 2.0},
    ),
    _ex("focal", 0.13644978307788275, "hand: (1 − p_y)·CE = 0.334759·0.407606", hp={"gamma": 1.0}),
    _ex(
        "focal",
        0.011419449741971233,
        "hand: α_y(1 − p_y)²·CE with α_0 = 0.25",
        hp={"gamma": 2.0, "alpha": [0.25, 0.75, 0.75]},
    ),
    _ex(
        "dice",
        0.11042784720742327,
        "A§7 [code] α=0, γ=1, squared denominator",
        hp={"alpha": 0.0, "smooth": 1.0},
    ),
    _ex("dice", 0.3344941966228847, "A§7 [code] α=1, γ=1", hp={"alpha": 1.0, "smooth": 1.0}),
    _ex("dice", 2.0638254165906402, "A§7 [code] α=0, γ=1e-4", hp={"alpha": 0.0, "smooth": 1e-4}),
    _ex(
        "dice",
        0.1256017935263415,
        "A§7 [mem] paper DSC, target class, linear denominator, α=0",
        hp={"square_denominator": False, "classes": "target"},
    ),
    _ex(
        "dice",
        0.3497125895819485,
        "A§7 [mem] paper DSC, target class, linear denominator, α=1",
        hp={"alpha": 1.0, "square_denominator": False, "classes": "target"},
    ),
    _ex("self-adjusting-dice", 0.1123089275916117, "A§7 [code] α=0.01, γ=1", hp={"alpha": 0.01}),
    _ex("self-adjusting-dice", 0.3344941966228847, "A§7 [code] α=1, γ=1", hp={"alpha": 1.0}),
    _ex("tversky", 0.09133343435381625, "A§7 Tversky, target class, a=b=0.5, γ=1", hp={"classes": "target"}),
    _ex(
        "tversky",
        0.123360049309158,
        "A§7 Tversky, target class, a=0.3, b=0.7, γ=1",
        hp={"classes": "target", "alpha": 0.3, "beta": 0.7},
    ),
    _ex(
        "tversky",
        0.24343327452733432,
        "hand: Σ_c 1 − (p_c t_c + 1)/(p_c t_c + a p_c(1−t_c) + b(1−p_c)t_c + 1), a=b=0.5: "
        "0.091333 + (1 − 1/1.122364) + (1 − 1/1.045016)",
    ),
    _ex("tversky", 0.218055848693406, "hand: as above with a=0.3, b=0.7", hp={"alpha": 0.3, "beta": 0.7}),
    _ex(
        "dice-batch",
        0.026773223556447474,
        "hand: mean_c 1 − (2Σ_i p_ic t_ic + 1)/(Σ_i p_ic² + Σ_i t_ic + 1), z = [(2,1,0),(0,3,0)], y = (0,1)",
        input=[[2.0, 1.0, 0.0], [0.0, 3.0, 0.0]],
        target=[0, 1],
    ),
    _ex(
        "dice-batch",
        0.15209628009259835,
        "hand: as above on p̃ = (1 − p)^0.5·p",
        input=[[2.0, 1.0, 0.0], [0.0, 3.0, 0.0]],
        target=[0, 1],
        hp={"alpha": 0.5},
    ),
    _ex(
        "tversky-batch",
        0.08216654979918174,
        "hand: mean_c 1 − (TP_c + 1)/(TP_c + 0.5 FP_c + 0.5 FN_c + 1), same batch",
        input=[[2.0, 1.0, 0.0], [0.0, 3.0, 0.0]],
        target=[0, 1],
    ),
    _ex(
        "tversky-batch",
        0.07848385668066386,
        "hand: as above with a=0.3, b=0.7",
        input=[[2.0, 1.0, 0.0], [0.0, 3.0, 0.0]],
        target=[0, 1],
        hp={"alpha": 0.3, "beta": 0.7},
    ),
    # ---------------------------------------------------------------- surrogates (AnyLoss)
    # B§5: binary p via two softmax columns (0, logit p), so softmax_1 = σ(logit p) = p; weight
    # (0, 1) keeps the positive class's one-vs-rest loss only; smooth 0 as in the spec's numbers.
    *[
        _ex(
            name,
            value,
            src,
            input=[[0.0, math.log(q / (1 - q))] for q in probs],
            target=[1, 1, 0, 0],
            hp={"smooth": 0.0, **hp},
            # Accuracy counts both columns' true positives (TP₀ = TN), so it takes no weight.
            tensors={} if name == "anyloss-acc" else {"weight": [0.0, 1.0]},
        )
        for name, value, src, probs, hp in [
            ("anyloss-acc", 0.0003375414424394707, "B§5 [code] ex.1 1−Acc", (0.9, 0.6, 0.4, 0.2), {}),
            ("anyloss-acc", 0.4873337624747234, "B§5 [code] ex.2 1−Acc", (0.7, 0.45, 0.55, 0.1), {}),
            ("anyloss-bacc", 0.0003375414424394707, "B§5 [code] ex.1 1−BAcc", (0.9, 0.6, 0.4, 0.2), {}),
            ("anyloss-fbeta", 0.00033754144241338047, "B§5 [code] ex.1 1−F1", (0.9, 0.6, 0.4, 0.2), {}),
            ("anyloss-fbeta", 0.4873338180736908, "B§5 [code] ex.2 1−F1", (0.7, 0.45, 0.55, 0.1), {}),
            (
                "anyloss-fbeta",
                0.48733385316714495,
                "hand: ex.2, β=2: 1 − 5·TP/(4·n₁ + Σŷ)",
                (0.7, 0.45, 0.55, 0.1),
                {"beta": 2.0},
            ),
            (
                "anyloss-gmean",
                0.0006749689506535539,
                "B§5 [code] ex.1 1 − TP·TN/(n₁n₀)",
                (0.9, 0.6, 0.4, 0.2),
                {},
            ),
            (
                "anyloss-gmean",
                0.0003375414424394707,
                "B§5 [code] ex.1 1 − √(sens·spec)",
                (0.9, 0.6, 0.4, 0.2),
                {"gmean_sqrt": True},
            ),
            (
                "anyloss-gmean",
                0.7371733289016897,
                "hand: ex.2, ŷ = (1, 0.025333, 0.974667, 0): 1 − TP·TN/4 = 1 − 1.025333·1.025333/4",
                (0.7, 0.45, 0.55, 0.1),
                {},
            ),
        ]
    ],
    # ---------------------------------------------------------------- confidence family
    _ex("dco", 0.40760596444438046, "A§8 [mem] N=1 (= CE)", hp={"n": 1.0}),
    _ex("dco", 0.01263777575443372, "A§8 N=4: −log(1 − (1 − p_y)^4)", hp={"n": 4.0}),
    _ex("dco", 2.4872366809045882e-08, "A§8 N=16", hp={"n": 16.0}),
    _ex("dco", 2.4076059644443806, "A§8 y=2, N=1", hp={"n": 1.0}, target=[2]),
    _ex("dco", 1.1572719909363183, "A§8 y=2, N=4", hp={"n": 4.0}, target=[2]),
    _ex("dco", 0.24976810655575502, "A§8 y=2, N=16", hp={"n": 16.0}, target=[2]),
    _ex(
        "ntp-reward",
        0.40760596444438046,
        "A§9 (our harness): β=0, no negative rewards = CE",
        hp={"beta": 0.0},
    ),
    _ex(
        "ntp-reward",
        0.40113923197297674,
        "hand (potential of A§9's harness): CE − Σ_neg r(a)p_a, top-2 ∖ {y} = {1}: "
        "0.407606 − (0.1·0.244728 − 0.2·0.090031)",
        hp={"beta": 0.0, "top_k": 2, "top_reward": 0.1, "tail_reward": -0.2},
    ),
    _ex(
        "ntp-reward",
        0.3875259500467845,
        "hand (losslab's documented potential, no spec number): (1 − p_y^{−β})/(−β), β=−0.25 "
        "(weight p_y^{−β}: β<0 lowers entropy, A§9). A§9 only fixes the gradient; the "
        "stop-gradient surrogate's value −p_y^{−β}·log p_y = 0.368116 differs",
        hp={"beta": -0.25},
    ),
    _ex("ca-calib", 0.11206361769055483, "A§11 [code] T=1, one correct row: (conf − 1)²"),
    _ex(
        "ca-calib",
        0.2773045734653766,
        "A§11 [code] rows (E,y=0 correct), (E,y=1 wrong): acc=½, weights ½,½: (0.112064 + 0.442546)/2",
        input=[[2.0, 1.0, 0.0], [2.0, 1.0, 0.0]],
        target=[0, 1],
    ),
    _ex(
        "ca-calib",
        0.24356160441258018,
        "A§11 [code] T=2 (calibrated logits z/2), correct row",
        input=[[1.0, 0.5, 0.0]],
    ),
    _ex(
        "ca-calib",
        0.25133881167232874,
        "hand: rows E y=0 (right), E y=1 (wrong), (0,3,0) y=1 (right); acc=⅔ → b = ⅓,⅔,⅓: "
        "(⅓·0.112064 + ⅔·0.442546 + ⅓·(1 − 0.909443)²)/(4/3)",
        input=[[2.0, 1.0, 0.0], [2.0, 1.0, 0.0], [0.0, 3.0, 0.0]],
        target=[0, 1, 1],
    ),
    # ---------------------------------------------------------------- consistency family
    _ex(
        "cbc",
        0.0877576813083573,
        "B§12 [code] binary, 3 voxels (target unused by the loss)",
        input=[[2.0, -1.0], [0.2, 0.1], [-0.5, 1.5]],
        target=[0, 0, 0],
        tensors={"teacher_logits": [[1.5, -1.5], [0.1, 0.0], [-2.0, 1.0]]},
    ),
    _ex(
        "dkl",
        0.0034895482257343317,
        "B§11 [code/paper] τ=0.1, mean over the two pairs",
        input=[[0.9, 0.1, 0.0, 0.2], [0.1, 0.2, 0.8, 0.0]],
        target=[0, 0],
        tensors={"view_logits": [[0.8, 0.2, 0.0, 0.1], [0.2, 0.1, 0.7, 0.1]]},
    ),
    _ex(
        "ler",
        0.191700914962462,
        "B§11 [code] (examples_B2 LER2), selected row",
        input=[[0.6, 0.45, 0.1, 0.0]],
        target=[0],
        hp={"num_known": 2},
        tensors={"prior": [0.4, 0.3, 0.2, 0.1]},
    ),
    _ex(
        "ler",
        7.3918966337473425e-06,
        "B§11 [code] two rows, second not selected (mean incl. zero)",
        input=[[0.9, 0.1, 0.0, 0.2], [0.1, 0.2, 0.8, 0.0]],
        target=[0, 0],
        hp={"num_known": 2},
        tensors={"prior": [0.4, 0.3, 0.2, 0.1]},
    ),
    _ex(
        "ler",
        0.19140976119960773,
        "B§11 (examples_B2): adjustment 0 gives the entropy of softmax(z/0.05)",
        input=[[0.6, 0.45, 0.1, 0.0]],
        target=[0],
        hp={"num_known": 2, "adjustment": 0.0},
        tensors={"prior": [0.4, 0.3, 0.2, 0.1]},
    ),
    _ex(
        "sce-consistency",
        1.1298430727024762,
        "B§10 [code] z_s = (1,0,−1), z_t = (0.5,0.5,0)",
        input=[[1.0, 0.0, -1.0]],
        tensors={"teacher_logits": [[0.5, 0.5, 0.0]]},
    ),
    # ---------------------------------------------------------------- distillation family
    _ex(
        "kd",
        0.4322600177983984,
        "hand (no spec section; Hinton et al.): T=1, KL(softmax(t)‖softmax(s)) for s=(1,2,0.5), t=(2,1,0)",
        input=[[1.0, 2.0, 0.5]],
        target=[1],
        hp={"temperature": 1.0},
        tensors={"teacher_logits": [[2.0, 1.0, 0.0]]},
    ),
    _ex(
        "kd",
        0.39511549575563293,
        "hand: T=4, 16·KL(softmax(t/4)‖softmax(s/4))",
        input=[[1.0, 2.0, 0.5]],
        target=[1],
        hp={"temperature": 4.0},
        tensors={"teacher_logits": [[2.0, 1.0, 0.0]]},
    ),
    _ex(
        "kd",
        0.8594842798635778,
        "hand: T=4 KD 0.395115 + 1·CE(s, y=1) 0.464369",
        input=[[1.0, 2.0, 0.5]],
        target=[1],
        hp={"temperature": 4.0, "ce_weight": 1.0},
        tensors={"teacher_logits": [[2.0, 1.0, 0.0]]},
    ),
    _ex(
        "pld",
        0.42901968860713197,
        "B§7 [paper appendix] τ_T=1, π* = (1, 0, 2)",
        input=[[1.0, 2.0, 0.5]],
        target=[1],
        tensors={"teacher_logits": [[2.0, 1.0, 0.0]]},
    ),
    _ex(
        "pld",
        0.3503612713467906,
        "B§7 τ_T=4",
        input=[[1.0, 2.0, 0.5]],
        target=[1],
        hp={"teacher_temperature": 4.0},
        tensors={"teacher_logits": [[2.0, 1.0, 0.0]]},
    ),
    _ex(
        "multi-aspect-kd",
        2.515988640053816,
        "B§15 [code]: CE 0.241311 + 4·BCE 0.568669",
        input=[[2.0, 0.5, -1.0]],
        tensors={"aspect_logits": [[1.0, -0.5]], "aspect_targets": [[0.8, 0.3]]},
    ),
    _ex(
        "multi-aspect-kd",
        1.0512919291634788,
        "hand: w_ce=2, α=1: 2·0.241311 + 0.568669",
        input=[[2.0, 0.5, -1.0]],
        hp={"ce_weight": 2.0, "alpha": 1.0},
        tensors={"aspect_logits": [[1.0, -0.5]], "aspect_targets": [[0.8, 0.3]]},
    ),
    # ---------------------------------------------------------------- distributional (kind "value")
    _ex(
        "hl-gauss",
        1.1948783101090519,
        "B§8 support [0,1], m=4, σ=0.1875, y=0.3, logits (0,1,0.5,−1)",
        input=[[0.0, 1.0, 0.5, -1.0]],
        target=[0.3],
        hp={"v_min": 0.0, "v_max": 1.0, "num_bins": 4},
    ),
    _ex(
        "two-hot",
        0.8465672691737911,
        "hand from B§8's encoding (0.1, 0.9, 0, 0): −(0.1 log p_0 + 0.9 log p_1), logits (0,1,0.5,−1)",
        input=[[0.0, 1.0, 0.5, -1.0]],
        target=[0.3],
        hp={"v_min": 0.0, "v_max": 1.0, "num_bins": 4},
    ),
    _ex(
        "two-hot",
        0.996567269173791,
        "hand: y=0.5 → (0, 0.5, 0.5, 0): −(0.5 log p_1 + 0.5 log p_2)",
        input=[[0.0, 1.0, 0.5, -1.0]],
        target=[0.5],
        hp={"v_min": 0.0, "v_max": 1.0, "num_bins": 4},
    ),
]


# =====================================================================================
# Identities (spec-stated, as pairs of calls)
# =====================================================================================

# A small literal batch with K = 3 for the identities on the E-style losses.
Z3 = [[2.0, 1.0, 0.0], [0.5, -1.0, 1.5], [-2.0, 0.3, 0.1], [1.0, 1.0, 1.0], [3.0, -0.5, 0.2]]
Y3 = [0, 2, 1, 0, 1]
# A second K = 3 "teacher / view" batch for the two-input consistency losses.
T3 = [[0.5, 0.5, 0.0], [1.0, -0.2, 0.3], [0.0, 0.0, 2.0], [-1.0, 0.4, 0.9], [2.5, 0.1, -0.3]]
ONE_ROW = [[0.3, -1.2, 0.8, 2.0]]


def _same(
    a: str,
    hp_a: dict[str, Any],
    b: str,
    hp_b: dict[str, Any],
    source: str,
    coef: float = 1.0,
    offset: float = 0.0,
) -> Identity:
    return Identity(
        f"{a}{hp_a} = {coef}·{b}{hp_b} + {offset:g}",
        source,
        Call(a, hp_a),
        ((coef, Call(b, hp_b)),),
        Z3,
        Y3,
        offset,
    )


def _ler_rows() -> Nested:
    return [[0.6, 0.45, 0.1, 0.0], [0.9, 0.1, 0.0, 0.2]]


IDENTITIES: list[Identity] = [
    _same("comp-sum", {"tau": 1.0}, "ce", {}, "A§1.1: τ=1 is CE"),
    _same("comp-sum", {"tau": 1.5}, "gce", {"q": 0.5}, "A§1.1/§2.1: τ = 1 + q is GCE"),
    _same("comp-sum", {"tau": 1.7}, "gce", {"q": 0.7}, "A§1.1/§2.1: τ = 1 + q is GCE"),
    _same("comp-sum", {"tau": 2.0}, "mae", {}, "A§1.1: τ=2 is MAE in reduced form 1 − p_y", 0.5),
    _same("gce", {"q": 1.0}, "mae", {}, "A§2.1: q=1 gives 1 − p_y = MAE/2", 0.5),
    _same("rce", {}, "mae", {}, "A§2.3: RCE = −A(1 − p_y) = (−A/2)·MAE", -A_CODE / 2),
    _same("rce", {"log_zero": -4.0}, "mae", {}, "A§2.3: RCE with A=−4 = 2·MAE", 2.0),
    _same("gce", {"q": 1e-9}, "ce", {}, "A§2.1: q → 0 tends to CE (error ≈ q·log²p_y/2)"),
    _same("focal", {"gamma": 0.0}, "ce", {}, "Lin et al. (focal docstring): γ=0 is CE"),
    _same(
        "ntp-reward",
        {"beta": 0.0, "top_reward": 0.0, "tail_reward": 0.0},
        "ce",
        {},
        "A§9: β-neutral, zero negative rewards reproduces CE exactly",
    ),
    _same("dco", {"n": 1.0}, "ce", {}, "A§8: F = 1 at N=1, DCO reduces to CE"),
    _same(
        "ldr-kl",
        {"margin": 0.0, "lam": 1.0},
        "ce",
        {},
        "A§3.1: c=0, λ=1 gives CE − log K",
        offset=-math.log(3.0),
    ),
    Identity(
        "sce = α·ce + β·rce",
        "A§2.3: SCE = α·CE + β·RCE",
        Call("sce", {"alpha": 0.3, "beta": 2.0, "log_zero": -4.0}),
        ((0.3, Call("ce")), (2.0, Call("rce", {"log_zero": -4.0}))),
        Z3,
        Y3,
    ),
    Identity(
        "nce+rce = α·nce + β·rce",
        "A§2.4: APL = α·Active + β·Passive",
        Call("nce+rce", {"alpha": 10.0, "beta": 0.1}),
        ((10.0, Call("nce")), (0.1, Call("rce"))),
        Z3,
        Y3,
    ),
    Identity(
        "nce+rce(active=ngce) = α·ngce + β·rce",
        "A§2.4: APL with NGCE",
        Call("nce+rce", {"active": "ngce", "q": 0.5, "alpha": 2.0, "beta": 0.5}),
        ((2.0, Call("ngce", {"q": 0.5})), (0.5, Call("rce"))),
        Z3,
        Y3,
    ),
    Identity(
        "nce+mae = α·nce + β·mae",
        "A§2.4: APL NCE+MAE",
        Call("nce+mae", {"alpha": 1.5, "beta": 0.25}),
        ((1.5, Call("nce")), (0.25, Call("mae"))),
        Z3,
        Y3,
    ),
    Identity(
        "nce+rce(passive=mae) = nce+mae",
        "A§2.4: the same APL pair by two names",
        Call("nce+rce", {"passive": "mae", "alpha": 1.5, "beta": 0.25}),
        ((1.0, Call("nce+mae", {"alpha": 1.5, "beta": 0.25})),),
        Z3,
        Y3,
    ),
    *[
        Identity(
            f"Σ_j {name}(z, j) = {total:g}",
            src,
            Call(name, target=[0] * 5),
            ((-1.0, Call(name, target=[1] * 5)), (-1.0, Call(name, target=[2] * 5))),
            Z3,
            Y3,
            total,
        )
        for name, total, src in [
            ("nce", 1.0, "A§2.4: NCE is normalised, Σ_j NCE(z, j) = 1"),
            ("ngce", 1.0, "A§2.4: NGCE is normalised like NCE"),
            ("mae", 4.0, "A§2.2: MAE is symmetric, Σ_j 2(1 − p_j) = 2(K − 1)"),
        ]
    ],
    Identity(
        "aldr-kl(α→∞) = ldr-kl(λ=λ₀)",
        "A§3.2: λ* = λ₀(1 − KL/(α log K)) → λ₀, penalty → 0",
        Call("aldr-kl", {"lam0": 2.0, "alpha": 1e9, "margin": 0.1}, tensors={"sample_ids": [0, 1, 2, 3, 4]}),
        ((1.0, Call("ldr-kl", {"lam": 2.0, "margin": 0.1})),),
        Z3,
        Y3,
    ),
    Identity(
        "self-adjusting-dice(α=0) = dice",
        "A§7: p̃ = (1 − p)^0·p = p",
        Call("self-adjusting-dice", {"alpha": 0.0}),
        ((1.0, Call("dice")),),
        Z3,
        Y3,
    ),
    Identity(
        "tversky(a=b=½, γ) = dice(linear, 2γ)",
        "A§7: a=b=0.5 reduces to Dice; ×2: (2pt+2γ)/(p+t+2γ)",
        Call("tversky", {"smooth": 0.5}),
        ((1.0, Call("dice", {"square_denominator": False, "smooth": 1.0})),),
        Z3,
        Y3,
    ),
    Identity(
        "tversky-batch(a=b=½, γ) = dice-batch(linear, 2γ)",
        "A§7: as for tversky, with 2TP + FP + FN = Σp + Σt",
        Call("tversky-batch", {"smooth": 0.5}),
        ((1.0, Call("dice-batch", {"square_denominator": False, "smooth": 1.0})),),
        Z3,
        Y3,
    ),
    Identity(
        "dice-batch on one row = dice / C",
        "A§7: set Dice over one sample, mean vs sum over classes",
        Call("dice-batch", {"alpha": 0.3}),
        ((0.25, Call("dice", {"alpha": 0.3})),),
        ONE_ROW,
        [2],
    ),
    Identity(
        "sce-consistency = ½ce(z_s, p_t) + ½ce(z_t, p_s)",
        "B§10: SCE definition",
        Call("sce-consistency", tensors={"teacher_logits": T3}),
        ((0.5, Call("ce", target=_softmax(T3))), (0.5, Call("ce", input=T3, target=_softmax(Z3)))),
        Z3,
        Y3,
    ),
    Identity(
        "dkl = ce(z'/τ, p) − ce(z/τ, p), p = softmax(z/τ)",
        "B§11: KL = cross-entropy − entropy",
        Call("dkl", {"temperature": 0.5}, tensors={"view_logits": T3}),
        (
            (1.0, Call("ce", {"temperature": 0.5}, input=T3, target=_softmax(Z3, 0.5))),
            (-1.0, Call("ce", {"temperature": 0.5}, target=_softmax(Z3, 0.5))),
        ),
        Z3,
        Y3,
    ),
    Identity(
        "ler(adjustment=0) = entropy of softmax(z/τ_o) on selected rows",
        "B§11 (examples_B2 'plain entropy for comparison')",
        Call("ler", {"adjustment": 0.0, "num_known": 2}),
        ((1.0, Call("ce", {"temperature": 0.05}, target=_softmax(_ler_rows(), 0.05))),),
        _ler_rows(),
        [0, 0],
    ),
    Identity(
        "kd = T²·(ce(s, q, T) − ce(t, q, T)), q = softmax(t/T)",
        "Hinton et al.: T²·KL = T²(H(q,p) − H(q))",
        Call("kd", {"temperature": 2.0}, tensors={"teacher_logits": T3}),
        (
            (4.0, Call("ce", {"temperature": 2.0}, target=_softmax(T3, 2.0))),
            (-4.0, Call("ce", {"temperature": 2.0}, input=T3, target=_softmax(T3, 2.0))),
        ),
        Z3,
        Y3,
    ),
    Identity(
        "kd(ce_weight=w) = kd + w·ce",
        "Hinton et al.: hard-label term added",
        Call("kd", {"ce_weight": 0.7}, tensors={"teacher_logits": T3}),
        ((1.0, Call("kd", tensors={"teacher_logits": T3})), (0.7, Call("ce"))),
        Z3,
        Y3,
    ),
    Identity(
        "pld with a one-hot teacher on y = ce",
        "B§7: α = (1, 0, …, 0) gives cross-entropy",
        Call("pld", tensors={"teacher_logits": [[60.0 * (k == y) for k in range(3)] for y in Y3]}),
        ((1.0, Call("ce")),),
        Z3,
        Y3,
    ),
    Identity(
        "multi-aspect-kd(α=0) = w_ce·ce",
        "B§15: L = w_ce·CE + α·BCE",
        Call(
            "multi-aspect-kd",
            {"alpha": 0.0, "ce_weight": 1.5},
            tensors={"aspect_logits": [[0.2, -1.0]] * 5, "aspect_targets": [[0.9, 0.1]] * 5},
        ),
        ((1.5, Call("ce")),),
        Z3,
        Y3,
    ),
    Identity(
        "z-loss is shift and scale invariant",
        "A§4.1: invariant to shifts and positive rescaling",
        Call("z-loss", {"a": 2.0, "b": 0.5}),
        ((1.0, Call("z-loss", {"a": 2.0, "b": 0.5}, input=[[3.0 * v + 1.0 for v in r] for r in Z3[:3]])),),
        Z3[:3],
        Y3[:3],
    ),
    Identity(
        "two-hot with y on an atom = ce at that atom",
        "B§8: two-hot of an atom is one-hot",
        Call("two-hot", {"v_min": 0.0, "v_max": 1.0, "num_bins": 4}),
        ((1.0, Call("ce", target=[0, 1, 2, 3])),),
        [[0.0, 1.0, 0.5, -1.0], [2.0, -1.0, 0.0, 0.3], [0.1, 0.2, 0.3, 0.4], [1.0, 1.0, -2.0, 0.5]],
        [0.0, 1.0 / 3.0, 2.0 / 3.0, 1.0],
    ),
    Identity(
        "hl-gauss with σ ≪ bin width, y at a centre = ce at that bin",
        "B§8: for σ ≪ ς the target becomes one-hot",
        Call("hl-gauss", {"v_min": 0.0, "v_max": 1.0, "num_bins": 4, "sigma_ratio": 1e-3}),
        ((1.0, Call("ce", target=[0, 1, 2, 3])),),
        [[0.0, 1.0, 0.5, -1.0], [2.0, -1.0, 0.0, 0.3], [0.1, 0.2, 0.3, 0.4], [1.0, 1.0, -2.0, 0.5]],
        [0.125, 0.375, 0.625, 0.875],
    ),
]
