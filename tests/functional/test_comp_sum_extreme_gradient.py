"""comp-sum with τ < 1 at extreme logits: the loss overflows to inf (documented), and the
gradient stays entrywise exact, never NaN.

Regression: through log p_y the chain rule multiplied p_y^{τ-1} = inf by p_k = 0, so at
τ = 0 and ±1e4 logits the gradient held NaN.
"""

from __future__ import annotations

import math

import pytest
import torch

import losslab.functional as LF


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_comp_sum_tau_zero_gradient_at_1e4_logits_is_the_limit(dtype: torch.dtype) -> None:
    z = torch.tensor([[1e4, -1e4, -1e4], [1e4, -1e4, -1e4], [2.0, 1.0, 0.0]], dtype=dtype,
                     requires_grad=True)
    y = torch.tensor([1, 0, 0])
    loss = LF.comp_sum(z, y, tau=0.0)
    assert math.isinf(loss.item())
    loss.backward()
    g = z.grad
    assert g is not None and not torch.isnan(g).any()
    # Row 0 (y = 1): ℓ = 1/p_y - 1 = Σ_{k≠y} e^{z_k - z_y}, so ∂ℓ/∂z_k = e^{z_k - z_y} / 3:
    # e^{2e4} overflows (+inf), the target gets -inf, and class 2 gets e^0 / 3 exactly.
    assert g[0, 0].item() == math.inf and g[0, 1].item() == -math.inf
    assert g[0, 2].item() == pytest.approx(1.0 / 3.0)
    # Row 1 (y = 0, p_y = 1): a zero gradient; row 2 matches plain autograd on 1/p_y - 1.
    assert torch.equal(g[1].abs(), torch.zeros(3, dtype=dtype))
    z2 = z.detach()[2:].clone().requires_grad_()
    (1.0 / torch.softmax(z2, dim=1)[0, 0] - 1.0).div(3.0).backward()
    assert z2.grad is not None
    torch.testing.assert_close(g[2:], z2.grad)


@pytest.mark.parametrize("tau", [0.0, 0.3, 0.9])
def test_comp_sum_below_one_gradcheck(tau: float) -> None:
    torch.manual_seed(0)
    z = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 1, 2, 3, 1])
    assert torch.autograd.gradcheck(lambda u: LF.comp_sum(u, y, tau=tau), (z,))


def test_comp_sum_tau_zero_large_finite_gradient_is_finite() -> None:
    # |(τ - 1)·log p_y| = 40 stays inside float32: loss and gradient are finite.
    z = torch.tensor([[20.0, -20.0, 0.0]], requires_grad=True)
    loss = LF.comp_sum(z, torch.tensor([1]), tau=0.0)
    loss.backward()
    assert torch.isfinite(loss) and z.grad is not None and torch.isfinite(z.grad).all()
