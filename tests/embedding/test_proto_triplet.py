"""Proto-Triplet loss (SuSana Distancia): hand value, loop reference, gradcheck, prototypes."""

import pytest
import torch
from references import embedding as ref

import losslab
from losslab.functional.embedding.fewshot import class_prototypes, proto_triplet_loss


def test_hand_value():
    q = torch.tensor([[0.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    protos = torch.tensor([[1.0, 0.0], [0.0, 1.2]], dtype=torch.float64)
    pl = torch.tensor([0, 1])
    per = proto_triplet_loss(q, torch.tensor([0, 0]), ref_embeddings=protos, ref_labels=pl, reduction="none")
    # query 0: [1 - 1.2 + 0.5]_+ = 0.3; query 1: [sqrt(2) - 0.2 + 0.5]_+
    torch.testing.assert_close(per, torch.tensor([0.3, 2**0.5 + 0.3], dtype=torch.float64))


def test_loop_reference_and_gradcheck():
    g = torch.Generator().manual_seed(0)
    support = torch.randn(15, 4, generator=g, dtype=torch.float64)
    support_labels = torch.arange(5).repeat_interleave(3)
    protos, pl = class_prototypes(support, support_labels)
    torch.testing.assert_close(protos[2], support[6:9].mean(0))
    q = torch.randn(10, 4, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 5, (10,), generator=g)
    out = proto_triplet_loss(q, y, ref_embeddings=protos, ref_labels=pl, margin=1.0)
    assert out.item() == pytest.approx(ref.proto_triplet(q.detach(), y, protos, pl, 1.0), rel=1e-10)
    assert out.item() > 0
    assert torch.autograd.gradcheck(
        lambda u: proto_triplet_loss(u, y, ref_embeddings=protos, ref_labels=pl, margin=1.0), (q,)
    )
    s = support.clone().requires_grad_()  # gradient also reaches the support set via prototypes
    p2, _ = class_prototypes(s, support_labels)
    proto_triplet_loss(q.detach(), y, ref_embeddings=p2, ref_labels=pl, margin=1.0).backward()
    assert s.grad.abs().sum() > 0


def test_batch_prototypes_registry_and_degenerate_batches():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(8, 3, generator=g)
    y = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    protos, pl = class_prototypes(x, y)
    torch.testing.assert_close(
        proto_triplet_loss(x, y), proto_triplet_loss(x, y, ref_embeddings=protos, ref_labels=pl)
    )
    module = losslab.get_loss("proto-triplet", margin=0.2)
    torch.testing.assert_close(module(x, y), proto_triplet_loss(x, y, margin=0.2))
    z = torch.randn(3, 2, requires_grad=True)
    out = proto_triplet_loss(z, torch.zeros(3, dtype=torch.long))  # one class: no negatives
    out.backward()
    assert out.item() == 0.0 and torch.equal(z.grad, torch.zeros_like(z))
    with pytest.raises(ValueError, match="proto_triplet_loss: margin must lie in"):
        proto_triplet_loss(x, y, margin=-1.0)
