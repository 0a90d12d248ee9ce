"""Adapters to other ecosystems, each imported only when used.

- :mod:`losslab.integrations.transformers`: Hugging Face ``transformers`` (patch a causal LM
  so its loss is fused with the LM head, loss functions for ``Trainer``, a distillation
  trainer). Needs the ``hf`` extra: ``pip install 'losslab[hf]'``.
"""
