"""G-SimCLR batching: batches with at most one sample per pseudo-label cluster.

G-SimCLR (Chakraborty, Gosthipaty, Paul, 2020, arXiv 2009.12007) clusters unlabeled samples
with k-means (K = batch size) on auto-encoder features, then orders the data set so that a
batch rarely holds two samples of one cluster — two such samples would be treated as
negatives by NT-Xent although they are likely the same class.

* :func:`kmeans` — plain Lloyd k-means with k-means++ seeding, in torch, deterministic for a
  given ``seed``.
* :class:`ClusterDisjointBatchSampler` — a batch sampler over cluster ids. ``strict=False``
  reproduces the paper's fixed order (rank-major: the 1st sample of every cluster, then the
  2nd, ...; consecutive batches), which can put two same-cluster samples together once small
  clusters run out. ``strict=True`` guarantees no two same-cluster samples in any batch: each
  batch takes one sample from each of the B clusters with the most samples left.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import Tensor
from torch.utils.data import Sampler

from ._core.validation import check_tensor


def kmeans(features: Tensor, k: int, *, iterations: int = 50, seed: int = 0) -> Tensor:
    """Cluster the rows of ``features`` (N, D) into ``k`` clusters; return (N,) int64 ids.

    k-means++ seeding and Lloyd iterations (stops early once assignments settle). An empty
    cluster is re-seeded at the point farthest from its centre.
    """
    x = check_tensor("kmeans", "features", features)
    if x.dim() != 2 or not x.is_floating_point():
        raise ValueError(
            f"kmeans: features must be a 2-D float tensor (N, D), got {tuple(x.shape)} {x.dtype}"
        )
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= x.shape[0]:
        raise ValueError(f"kmeans: k must be an int in [1, N={x.shape[0]}], got {k!r}")
    x = x.detach().to(torch.float64)
    g = torch.Generator(device="cpu").manual_seed(seed)
    centres = x[torch.randint(x.shape[0], (1,), generator=g)]
    while centres.shape[0] < k:
        d2 = torch.cdist(x, centres).square().amin(1)
        weights = d2 if float(d2.sum()) > 0 else torch.ones_like(d2)
        centres = torch.cat([centres, x[torch.multinomial(weights.cpu(), 1, generator=g)]])
    assign = torch.full((x.shape[0],), -1, dtype=torch.long)
    for _ in range(iterations):
        dist = torch.cdist(x, centres)
        new = dist.argmin(1)
        if torch.equal(new, assign):
            break
        assign = new
        for c in range(k):
            members = assign == c
            if members.any():
                centres[c] = x[members].mean(0)
            else:
                far = int(dist.amin(1).argmax())
                centres[c] = x[far]
    return assign


def _check_cluster_ids(cluster_ids: object) -> list[int]:
    ids = torch.as_tensor(cluster_ids)
    if ids.dim() != 1 or ids.is_floating_point() or ids.numel() == 0:
        raise ValueError(
            "ClusterDisjointBatchSampler: cluster_ids must be a non-empty 1-D sequence of ints, "
            f"got shape {tuple(ids.shape)} dtype {ids.dtype}"
        )
    return [int(v) for v in ids.tolist()]


class ClusterDisjointBatchSampler(Sampler[list[int]]):
    """Yield batches of indices with (at most) one index per cluster.

    Args:
        cluster_ids: (N,) pseudo-labels (e.g. from :func:`kmeans` with ``k = batch_size``).
        batch_size: B.
        strict: ``True``: every batch has B distinct clusters (leftovers that cannot fill a
            batch are dropped when ``drop_last``, otherwise emitted in smaller batches that are
            still cluster-disjoint). ``False``: the paper's rank-major fixed order.
        shuffle: shuffle samples inside each cluster (and tie-breaks) every epoch; ``False``
            keeps index order, as the paper's notebooks do.
        drop_last: drop an incomplete final batch.
        seed: seed of the per-epoch shuffling (epoch e uses ``seed + e``; see ``set_epoch``).

    Example:
        >>> s = ClusterDisjointBatchSampler([0, 0, 1, 1, 2, 2], batch_size=3, strict=True)
        >>> list(s)
        [[0, 2, 4], [1, 3, 5]]
    """

    def __init__(
        self,
        cluster_ids: Sequence[int] | Tensor,
        batch_size: int,
        *,
        strict: bool = False,
        shuffle: bool = False,
        drop_last: bool = True,
        seed: int = 0,
    ) -> None:
        self.cluster_ids = _check_cluster_ids(cluster_ids)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(
                f"ClusterDisjointBatchSampler: batch_size must be a positive int, got {batch_size!r}"
            )
        self.batch_size = batch_size
        self.strict = bool(strict)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _members(self) -> dict[int, list[int]]:
        groups: dict[int, list[int]] = {}
        for index, cluster in enumerate(self.cluster_ids):
            groups.setdefault(cluster, []).append(index)
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed + self.epoch)
            for cluster, items in groups.items():
                order = torch.randperm(len(items), generator=g).tolist()
                groups[cluster] = [items[i] for i in order]
        return groups

    def _rank_major(self) -> list[list[int]]:
        groups = self._members()
        # (within-cluster rank, cluster id) is a total order: stable where pandas' sort is not.
        ranked = sorted(
            (rank, cluster, index)
            for cluster, items in groups.items()
            for rank, index in enumerate(items)
        )
        order = [index for _, _, index in ranked]
        return [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]

    def _strict(self) -> list[list[int]]:
        groups = self._members()
        batches: list[list[int]] = []
        while True:
            live = [c for c, items in groups.items() if items]
            if not live:
                break
            # Serving the fullest clusters first maximises the number of complete batches.
            live.sort(key=lambda c: (-len(groups[c]), c))
            chosen = live[: self.batch_size]
            batches.append([groups[c].pop(0) for c in chosen])
        return batches

    def _batches(self) -> list[list[int]]:
        batches = self._strict() if self.strict else self._rank_major()
        if self.drop_last:
            batches = [b for b in batches if len(b) == self.batch_size]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._batches())

    def __len__(self) -> int:
        return len(self._batches())

    @classmethod
    def from_features(
        cls, features: Tensor, batch_size: int, *, seed: int = 0, **kwargs: bool | int
    ) -> ClusterDisjointBatchSampler:
        """Cluster ``features`` with k-means (K = ``batch_size``, as the paper) and build the
        sampler on the resulting pseudo-labels."""
        ids = kmeans(features, batch_size, seed=seed)
        return cls(ids, batch_size, seed=seed, **kwargs)  # type: ignore[arg-type]
