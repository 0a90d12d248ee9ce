"""Every docstring example of the embedding losses and heads runs and prints its value."""

import doctest
import importlib
import math

import numpy as np
import pytest
from scipy.special import logsumexp

MODULES = [
    "losslab.functional._core.distances",
    "losslab.functional.embedding.pair_losses",
    "losslab.functional._core.pair_batch",
    "losslab.functional._core.multi_similarity_rows",
    "losslab.functional.embedding.fewshot",
    "losslab.functional.embedding.icnn",
    "losslab.functional.embedding.contrastive",
    "losslab.functional.embedding.metrix",
    "losslab.functional.regularizers.vcl",
    "losslab.functional.regularizers.cs_divergence",
    "losslab.functional.regularizers.elastic_quantization",
    "losslab.nn.embedding",
    "losslab.heads.margin",
    "losslab.heads.harmonic",
    "losslab.samplers",
]

# functions and classes the review (issue 7) asked to carry an example with its value
WITH_VALUES = {
    "losslab.functional.regularizers.vcl": ["vcl_loss"],
    "losslab.functional.regularizers.cs_divergence": ["cs_ib_loss", "cs_conditional_divergence",
                                         "cs_mutual_information"],
    "losslab.functional.regularizers.elastic_quantization": ["weight_distribution_loss"],
    "losslab.heads.harmonic": ["harmonic_loss"],
    "losslab.heads.margin": ["CosFaceHead", "UNPGHead"],
}


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module)
    assert result.failed == 0


@pytest.mark.parametrize(("module", "obj"), [(m, o) for m, objs in WITH_VALUES.items() for o in objs])
def test_reviewed_objects_have_examples(module, obj):
    doc = getattr(importlib.import_module(module), obj).__doc__
    assert ">>>" in doc and "Example" in doc


def test_unpg_docstring_value_by_hand():
    # spec B§6 ArcFace cosines, plus the one negative pair cosine as a fourth column
    c = np.array([[0.8, 0.3, -0.1], [0.2, 0.5, 0.4]])
    arc = c.copy()
    for i, t in enumerate([0, 1]):
        arc[i, t] = math.cos(math.acos(c[i, t]) + 0.5)
    neg = 0.27 + math.sqrt(0.26 * 0.55)
    logits = 64 * np.concatenate([arc, np.full((2, 1), neg)], 1)
    loss = np.mean([logsumexp(logits[i]) - logits[i, t] for i, t in enumerate([0, 1])])
    assert neg == pytest.approx(0.648153, abs=1e-6)
    assert loss == pytest.approx(27.465584, abs=1e-6)
