"""Regularisers added to a task loss: variance-constancy (VCL), Cauchy-Schwarz divergences
and mutual information, and the elastic-quantization weight-distribution terms.

Its public functions are exported by :mod:`losslab.functional`.
"""
