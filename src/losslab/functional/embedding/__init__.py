"""Metric-learning losses on embeddings: ``loss(embeddings, labels, ref_embeddings=None,
ref_labels=None)`` like pytorch-metric-learning. One module per family; each declares its
losses right after their functions.

Its public functions are exported by :mod:`losslab.functional`.
"""
