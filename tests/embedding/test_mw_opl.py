"""MW (Mann-Whitney) loss and Orthogonal Projection Loss: worked values (spec B§4, A§6), loop
references, gradcheck, empty batches."""

import pytest
import torch
from references import embedding as ref

from losslab.functional.embedding.pair_losses import mw_loss, orthogonal_projection_loss

Q, P = torch.eye(2, dtype=torch.float64), torch.tensor([[0.9, 0.2], [0.3, 0.6]], dtype=torch.float64)
IDS = torch.tensor([0, 1])


@pytest.mark.parametrize(
    "tau,expected", [(1.0, 0.9540222), (0.1, 0.0350622), (0.05, 0.0014090), (0.01, 4.67e-14)]
)
def test_mw_worked_values(tau, expected):
    out = mw_loss(Q, IDS, ref_embeddings=P, ref_labels=IDS, temperature=tau, distance="dot")
    assert out.item() == pytest.approx(expected, rel=1e-4, abs=1e-9)


def test_mw_hard_negatives_loop_and_chunking():
    g = torch.Generator().manual_seed(4)
    q = torch.randn(5, 4, generator=g, dtype=torch.float64)
    passages = torch.randn(15, 4, generator=g, dtype=torch.float64)  # 5 positives + 10 hard negatives
    qid = torch.arange(5)
    pid = torch.cat([torch.arange(5), torch.full((10,), -1)])
    out = mw_loss(q, qid, ref_embeddings=passages, ref_labels=pid, temperature=0.5, distance="dot")
    assert out.item() == pytest.approx(ref.mw(q, qid, passages, pid, 0.5), rel=1e-10)
    chunked = mw_loss(q, qid, ref_embeddings=passages, ref_labels=pid, temperature=0.5,
                      distance="dot", chunk_size=2)
    torch.testing.assert_close(chunked, out)
    qq = q.clone().requires_grad_()
    assert torch.autograd.gradcheck(
        lambda u: mw_loss(u, qid, ref_embeddings=passages, ref_labels=pid, temperature=0.5,
                          reduction="none"), (qq,)
    )


def test_mw_no_pairs_connected_zero():
    z = torch.randn(3, 2, requires_grad=True)
    loss = mw_loss(z, torch.tensor([0, 1, 2]))
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(z.grad, torch.zeros_like(z))


def test_opl_worked_values_and_variants():
    f = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]], dtype=torch.float64)
    lab = torch.tensor([0, 0, 1])
    assert orthogonal_projection_loss(f, lab).item() == pytest.approx(0.6, abs=1e-12)
    assert orthogonal_projection_loss(f, lab, gamma=2.0, negative_abs="inside").item() == pytest.approx(1.2)
    g = torch.Generator().manual_seed(5)
    x = torch.randn(10, 3, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (10,), generator=g)
    assert orthogonal_projection_loss(x, y).item() == pytest.approx(ref.opl(x, y, 0.5), rel=1e-10)
    # "none" (root loss.py) differs from "outside" exactly when d < 0
    x[:, 0] = x[:, 0].abs()
    signed = orthogonal_projection_loss(x, y, negative_abs="none")
    absolute = orthogonal_projection_loss(x, y, negative_abs="outside")
    assert signed.item() <= absolute.item()
    xx = x.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda u: orthogonal_projection_loss(u, y, negative_abs="inside"), (xx,))


def test_opl_single_class_and_bad_input():
    z = torch.randn(4, 3, requires_grad=True)
    out = orthogonal_projection_loss(z, torch.tensor([1, 1, 1, 1]))
    out.backward()
    assert torch.isfinite(z.grad).all()
    with pytest.raises(ValueError, match="orthogonal_projection_loss: negative_abs must be one of"):
        orthogonal_projection_loss(z, torch.tensor([1, 1, 1, 1]), negative_abs="both")
    with pytest.raises(ValueError, match="orthogonal_projection_loss: gamma must lie in"):
        orthogonal_projection_loss(z, torch.tensor([1, 1, 1, 1]), gamma=-1.0)


def test_with_opl_adds_the_term_to_cross_entropy():
    import torch.nn.functional as TF

    from losslab.nn.embedding import WithOPL

    g = torch.Generator().manual_seed(6)
    logits, feats = torch.randn(6, 3, generator=g), torch.randn(6, 4, generator=g)
    y = torch.tensor([0, 0, 1, 1, 2, 2])
    out = WithOPL(weight=0.5, gamma=2.0)(logits, feats, y)
    expected = TF.cross_entropy(logits, y) + 0.5 * orthogonal_projection_loss(feats, y, gamma=2.0)
    torch.testing.assert_close(out, expected)
