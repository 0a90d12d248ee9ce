"""Registry entries and modules of the embedding losses equal their functional forms."""

import pytest
import torch

import losslab
import losslab.functional as LF
from losslab.functional.embedding.fewshot import proto_triplet_loss
from losslab.nn import MultiSimilarityLoss, MWLoss, NTXentLoss, OrthogonalProjectionLoss

NAMES = {"ms": LF.multi_similarity_loss, "ntxent": LF.nt_xent_loss, "mw": LF.mw_loss,
         "opl": LF.orthogonal_projection_loss, "proto-triplet": proto_triplet_loss}


def test_registered_as_embeddings():
    infos = {i.name: i for i in losslab.list_losses(kind="embeddings")}
    assert set(NAMES) <= set(infos)
    for name, fn in NAMES.items():
        assert infos[name].function is fn
        assert infos[name].family == "embedding"
        assert "ref_embeddings" not in infos[name].defaults


@pytest.mark.parametrize("name", sorted(NAMES))
def test_module_equals_functional_and_rejects_bad_hyperparameters(name):
    g = torch.Generator().manual_seed(0)
    e = torch.randn(10, 4, generator=g, dtype=torch.float64)
    lab = torch.randint(0, 3, (10,), generator=g)
    r = torch.randn(6, 4, generator=g, dtype=torch.float64)
    rlab = torch.randint(0, 3, (6,), generator=g)
    info = {i.name: i for i in losslab.list_losses(kind="embeddings")}[name]
    module = losslab.get_loss(name)
    torch.testing.assert_close(module(e, lab), NAMES[name](e, lab))
    torch.testing.assert_close(
        module(e, lab, r, rlab), NAMES[name](e, lab, ref_embeddings=r, ref_labels=rlab)
    )
    for bad in info.invalid_hyperparameters:
        with pytest.raises(ValueError):
            losslab.get_loss(name, **bad)
    with pytest.raises(TypeError):
        losslab.get_loss(name, not_a_hyperparameter=1)


def test_module_hyperparameters_and_reduction():
    e = torch.randn(8, 3)
    lab = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    ms = MultiSimilarityLoss(beta=40.0, epsilon=0.1, variant="official", reduction="none")
    torch.testing.assert_close(
        ms(e, lab), LF.multi_similarity_loss(e, lab, beta=40.0, epsilon=0.1, variant="official",
                                             reduction="none")
    )
    assert "beta=40.0" in repr(ms)
    torch.testing.assert_close(NTXentLoss(temperature=0.2)(e, lab), LF.nt_xent_loss(e, lab, temperature=0.2))
    torch.testing.assert_close(MWLoss(temperature=0.5)(e, lab), LF.mw_loss(e, lab, temperature=0.5))
    torch.testing.assert_close(OrthogonalProjectionLoss(gamma=2.0)(e, lab),
                               LF.orthogonal_projection_loss(e, lab, gamma=2.0))
    with pytest.raises(ValueError, match="reduction must be one of"):
        NTXentLoss(reduction="max")


@pytest.mark.parametrize("name", sorted(NAMES))
@pytest.mark.parametrize("distance", ["dot", "euclidean"])
def test_extreme_scale_gives_finite_loss_and_gradients(name, distance):
    g = torch.Generator().manual_seed(5)
    e = (1e4 * torch.randn(12, 4, generator=g)).requires_grad_()
    lab = torch.randint(0, 3, (12,), generator=g)
    kw = {} if name == "opl" else {"distance": distance}
    out = losslab.get_loss(name, **kw)(e, lab)
    out.backward()
    assert torch.isfinite(out) and torch.isfinite(e.grad).all()


def test_one_base_for_every_embedding_module_and_exports():
    from losslab._core.loss_modules import EmbeddingLoss
    from losslab.functional import metrix_pairs, mix  # noqa: F401  (exported, issue 7 review)
    from losslab.nn import ICNNLoss, ProtoTripletLoss, WithOPL

    modules = (MultiSimilarityLoss, NTXentLoss, MWLoss, OrthogonalProjectionLoss, ProtoTripletLoss,
               ICNNLoss)
    assert all(issubclass(m, EmbeddingLoss) for m in modules)
    assert WithOPL.__module__ == "losslab.nn.embedding"
    e = torch.randn(8, 3, dtype=torch.float64)
    lab = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    # per-call inputs (MS's mined pairs) pass through; hyperparameters are fixed at construction
    pairs = LF.multi_similarity_miner(e, lab, epsilon=0.1)
    torch.testing.assert_close(MultiSimilarityLoss()(e, lab, pairs=pairs),
                               LF.multi_similarity_loss(e, lab, pairs=pairs))
    assert repr(ICNNLoss(k=2)) == (
        "ICNNLoss(k=2, search_k=None, score='modified', p=2.0, r=2.0, distance='euclidean')"
    )
    with pytest.raises(ValueError, match="icnn_loss: k must be >= 1"):
        ICNNLoss(k=0)
    with pytest.raises(TypeError, match="OrthogonalProjectionLoss: unexpected hyperparameter 'reduction'"):
        OrthogonalProjectionLoss(reduction="sum")
    # NT-Xent's process group is a construction option (used with gather_distributed=True)
    nt = NTXentLoss(temperature=0.2, process_group=None)
    assert nt.hyperparameters["process_group"] is None and "process_group" not in repr(nt)
