"""G-SimCLR cluster-disjoint batch sampler and k-means (spec B§2b)."""

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from losslab.samplers import ClusterDisjointBatchSampler, kmeans


def test_kmeans_recovers_separated_blobs():
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    truth = torch.arange(3).repeat_interleave(20)
    x = centres[truth] + 0.3 * torch.randn(60, 2, generator=g)
    ids = kmeans(x, 3, seed=1)
    # the clustering equals the truth up to a relabelling
    pairs = {(int(a), int(b)) for a, b in zip(ids, truth, strict=True)}
    assert len(pairs) == 3 and len({a for a, _ in pairs}) == 3
    torch.testing.assert_close(kmeans(x, 3, seed=1), ids)  # deterministic


def test_paper_order_is_rank_major():
    ids = [2, 0, 0, 1, 2, 0, 1]
    s = ClusterDisjointBatchSampler(ids, batch_size=3, drop_last=False)
    # rank 1 of clusters 0, 1, 2 = indices 1, 3, 0; rank 2 = 2, 6, 4; rank 3 = 5
    assert list(s) == [[1, 3, 0], [2, 6, 4], [5]]
    assert len(ClusterDisjointBatchSampler(ids, batch_size=3)) == 2


def test_strict_every_batch_is_cluster_disjoint():
    g = torch.Generator().manual_seed(2)
    ids = torch.randint(0, 9, (200,), generator=g)
    for drop_last in [True, False]:
        s = ClusterDisjointBatchSampler(ids, batch_size=6, strict=True, shuffle=True, drop_last=drop_last)
        batches = list(s)
        assert batches
        for b in batches:
            clusters = ids[b].tolist()
            assert len(set(clusters)) == len(clusters)
            if drop_last:
                assert len(b) == 6
        flat = [i for b in batches for i in b]
        assert len(flat) == len(set(flat))
        if not drop_last:
            assert sorted(flat) == list(range(200))


def test_balanced_clusters_give_full_distinct_batches_in_both_modes():
    ids = torch.arange(8).repeat(5)  # 8 clusters of 5: 5 complete rank blocks
    for strict in [False, True]:
        batches = list(ClusterDisjointBatchSampler(ids, batch_size=8, strict=strict))
        assert len(batches) == 5
        assert all(sorted(ids[b].tolist()) == list(range(8)) for b in batches)


def test_paper_order_can_repeat_a_cluster_when_small_ones_run_out():
    ids = [0, 0, 0, 0, 1, 2]  # rank block 2 onward holds only cluster 0
    batches = list(ClusterDisjointBatchSampler(ids, batch_size=2, drop_last=False))
    assert any(len({ids[i] for i in b}) < len(b) for b in batches)
    strict = list(ClusterDisjointBatchSampler(ids, batch_size=2, strict=True, drop_last=False))
    assert all(len({ids[i] for i in b}) == len(b) for b in strict)


def test_shuffle_changes_with_epoch_and_works_with_dataloader():
    ids = torch.arange(4).repeat(6)
    s = ClusterDisjointBatchSampler(ids, batch_size=4, strict=True, shuffle=True)
    first = list(s)
    s.set_epoch(1)
    assert list(s) != first
    loader = DataLoader(TensorDataset(torch.arange(24)), batch_sampler=s)
    assert sum(len(b[0]) for b in loader) == 24
    from_features = ClusterDisjointBatchSampler.from_features(torch.randn(40, 3), 4, strict=True)
    assert all(len(b) == 4 for b in from_features)


def test_bad_inputs():
    with pytest.raises(ValueError, match="ClusterDisjointBatchSampler: batch_size must be"):
        ClusterDisjointBatchSampler([0, 1], batch_size=0)
    with pytest.raises(ValueError, match="ClusterDisjointBatchSampler: cluster_ids must be"):
        ClusterDisjointBatchSampler(torch.zeros(3, 2, dtype=torch.long), batch_size=2)
    with pytest.raises(ValueError, match="kmeans: k must be"):
        kmeans(torch.randn(5, 2), 6)
