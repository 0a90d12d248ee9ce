"""NT-Xent: worked values (spec B§2a), pytorch-metric-learning, loop reference, gradcheck,
and the cross-rank gather with two real gloo processes."""

import pytest
import torch
import torch.multiprocessing as mp
from pytorch_metric_learning import distances, losses
from references import embedding as ref
from references.distributed_nt_xent import global_batch, worker

from losslab.functional.embedding.contrastive import nt_xent_loss


def _views():
    a = torch.tensor([0.0, 30.0, 90.0, 135.0], dtype=torch.float64).deg2rad()
    return torch.stack([a.cos(), a.sin()], 1), torch.tensor([0, 0, 1, 1])


def test_worked_values():
    z, lab = _views()
    per = nt_xent_loss(z, lab, temperature=0.5, reduction="none")
    torch.testing.assert_close(
        per, torch.tensor([0.198797, 0.461438, 0.643945, 0.185637], dtype=torch.float64),
        atol=1e-6, rtol=0,
    )
    assert nt_xent_loss(z, lab, temperature=0.5).item() == pytest.approx(0.3724541, abs=1e-7)
    assert nt_xent_loss(z, lab, temperature=0.1).item() == pytest.approx(0.0362806, abs=1e-7)
    assert nt_xent_loss(z, lab, temperature=0.5, reduction="sum").item() == pytest.approx(
        4 * 0.3724541, abs=1e-6
    )


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
@pytest.mark.parametrize("with_ref", [False, True])
def test_equals_pml_and_loop(metric, with_ref):
    g = torch.Generator().manual_seed(3)
    e = torch.randn(24, 6, generator=g, dtype=torch.float64)
    lab = torch.randint(0, 5, (24,), generator=g)
    r = torch.randn(10, 6, generator=g, dtype=torch.float64)
    rlab = torch.randint(0, 5, (10,), generator=g)
    kw = dict(ref_embeddings=r, ref_labels=rlab) if with_ref else {}
    pkw = dict(ref_emb=r, ref_labels=rlab) if with_ref else {}
    dist = distances.CosineSimilarity() if metric == "cosine" else distances.LpDistance(normalize_embeddings=False)
    e1, e2 = e.clone().requires_grad_(), e.clone().requires_grad_()
    expected = losses.NTXentLoss(temperature=0.2, distance=dist)(e1, lab, **pkw)
    ours = nt_xent_loss(e2, lab, temperature=0.2, distance=metric, **kw)
    torch.testing.assert_close(ours, expected, rtol=1e-9, atol=1e-12)
    expected.backward()
    ours.backward()
    torch.testing.assert_close(e2.grad, e1.grad, rtol=1e-7, atol=1e-9)
    if metric == "cosine":
        loop = ref.nt_xent(e, lab, 0.2, *((r, rlab) if with_ref else ()))
        assert ours.item() == pytest.approx(loop, rel=1e-10)


def test_gradcheck_and_upstream_gradient_for_none():
    z = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    lab = torch.tensor([0, 0, 1, 1, 2, 2])
    assert torch.autograd.gradcheck(lambda u: nt_xent_loss(u, lab, temperature=0.3), (z,))
    assert torch.autograd.gradcheck(
        lambda u: nt_xent_loss(u, lab, temperature=0.3, reduction="none"), (z,)
    )


def test_no_positive_pairs_gives_connected_zero():
    z = torch.randn(3, 4, requires_grad=True)
    loss = nt_xent_loss(z, torch.tensor([0, 1, 2]))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(z.grad, torch.zeros_like(z))
    z2 = torch.randn(2, 4, requires_grad=True)  # one class only: positives but no negatives
    loss2 = nt_xent_loss(z2, torch.tensor([5, 5]))
    loss2.backward()
    assert loss2.item() == 0.0 and torch.isfinite(z2.grad).all()


def test_bad_inputs():
    with pytest.raises(ValueError, match="nt_xent_loss: temperature must lie in"):
        nt_xent_loss(torch.randn(2, 3), torch.tensor([0, 0]), temperature=0.0)
    with pytest.raises(ValueError, match="nt_xent_loss: gather_distributed=True needs"):
        nt_xent_loss(torch.randn(2, 3), torch.tensor([0, 0]), gather_distributed=True)
    with pytest.raises(ValueError, match="nt_xent_loss: ref_embeddings must have embedding_dim"):
        nt_xent_loss(torch.randn(2, 3), torch.tensor([0, 0]), ref_embeddings=torch.randn(2, 4),
                     ref_labels=torch.tensor([0, 1]))


@pytest.mark.slow
def test_two_gloo_ranks_equal_single_process(tmp_path):
    world, temperature = 2, 0.3
    mp.spawn(worker, args=(world, str(tmp_path / "rdv"), str(tmp_path), temperature), nprocs=world)
    x, y = global_batch()
    full = x.clone().requires_grad_()
    expected = nt_xent_loss(full, y, temperature=temperature)
    expected.backward()
    results = [torch.load(tmp_path / f"rank{r}.pt") for r in range(world)]
    mean_loss = sum(res["loss"] for res in results) / world
    torch.testing.assert_close(mean_loss, expected.detach())
    # DDP averages gradients over ranks, so each rank's gradient / W is the global gradient
    rows = x.shape[0] // world
    for r, res in enumerate(results):
        torch.testing.assert_close(res["grad"] / world, full.grad[r * rows : (r + 1) * rows])
    # the ranks hold different numbers of positive pairs, so this exercises the global count
    assert results[0]["loss"].item() != pytest.approx(results[1]["loss"].item())
    # sum: W x local sum, so the mean over ranks is the single-process sum
    total = nt_xent_loss(x, y, temperature=temperature, reduction="sum")
    torch.testing.assert_close(sum(res["sum"] for res in results) / world, total)
    # none: each rank's anchors' pair losses, unscaled; concatenated = single-process "none"
    torch.testing.assert_close(torch.cat([res["none"] for res in results]),
                               nt_xent_loss(x, y, temperature=temperature, reduction="none"))
    # the module with an explicit process_group equals the function
    for res in results:
        torch.testing.assert_close(res["module"], res["loss"])
