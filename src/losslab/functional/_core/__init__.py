"""Kernels and plumbing shared by the loss families of :mod:`losslab.functional`: fused
softmax statistics and objectives with hand-written backward passes, row blocking, the
batch-level path, pairwise distances and pair batches. No loss is declared here, and nothing
here imports a family."""
