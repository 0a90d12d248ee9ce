"""Named sweeps that test a paper's claim; the report says whether its direction reproduced.

A preset is a settings mapping (see :mod:`losslab.arena.settings`) plus :class:`Claim` records:
"``challenger`` beats ``baseline`` on ``metric`` at these noise rates".
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from .settings import DEFAULT_LOSSES


@dataclass(frozen=True)
class Claim:
    """A directional claim: each challenger's mean ``metric`` is better than the baseline's at
    every listed noise rate (``None``: at every rate in the sweep). With ``margin`` > 0 the
    claim is "no worse than the baseline by more than ``margin``"."""

    text: str
    metric: str
    baseline: str
    challengers: tuple[str, ...]
    higher_is_better: bool = True
    noise_rates: tuple[float, ...] | None = None
    margin: float = 0.0
    # The setting labels (see summary.setting_of) the claim is about; None: every setting.
    settings: tuple[str, ...] | None = None
    # Who made the claim, as cited in the claims table ("Zhang & Sabuncu 2018").
    paper: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "metric": self.metric,
            "baseline": self.baseline,
            "challengers": list(self.challengers),
            "higher_is_better": self.higher_is_better,
            "noise_rates": None if self.noise_rates is None else list(self.noise_rates),
            "margin": self.margin,
            "settings": None if self.settings is None else list(self.settings),
            "paper": self.paper,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Claim:
        rates = d.get("noise_rates")
        settings = d.get("settings")
        return cls(
            text=d["text"],
            metric=d["metric"],
            baseline=d["baseline"],
            challengers=tuple(d["challengers"]),
            higher_is_better=bool(d.get("higher_is_better", True)),
            noise_rates=None if rates is None else tuple(rates),
            margin=float(d.get("margin", 0.0)),
            settings=None if settings is None else tuple(settings),
            paper=str(d.get("paper", "")),
        )


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    settings: dict[str, Any]
    claims: tuple[Claim, ...] = ()

    def scope(self) -> tuple[tuple[str, ...], tuple[float, ...]]:
        """The setting labels (see :func:`losslab.arena.summary.setting_of`) and noise rates
        this preset's own sweep runs in."""
        from .settings import to_sweep
        from .summary import config_settings
        from .sweep import check_sweep

        configs = check_sweep(to_sweep(dict(self.settings))[0])
        return tuple(sorted(config_settings(configs))), tuple(
            sorted({c.noise_rate for c in configs}))

    def bound_claims(self) -> tuple[Claim, ...]:
        """The claims tied to this preset's own settings and noise rates, so a report never
        judges a claim on runs of another dataset, noise kind, size or rate."""
        labels, rates = self.scope()
        return tuple(
            replace(c, settings=labels, noise_rates=c.noise_rates or rates) for c in self.claims
        )


_ROBUST = ("gce", "sce", "nce+rce", "aldr-kl")
_ROBUST_PAPERS = {
    "gce": "Zhang & Sabuncu 2018 (GCE)",
    "sce": "Wang et al. 2019 (SCE)",
    "nce+rce": "Ma et al. 2020 (NCE+RCE)",
    "aldr-kl": "Zhu et al. 2023 (ALDR-KL)",
}


def _robust_claims(condition: str, losses: tuple[str, ...] = _ROBUST) -> tuple[Claim, ...]:
    """One claim per noise-robust loss: it beats CE's clean-test accuracy under ``condition``."""
    return tuple(
        Claim(f"{_ROBUST_PAPERS[loss]}: higher clean-test accuracy than CE under {condition}.",
              "test_acc", "ce", (loss,), paper=_ROBUST_PAPERS[loss])
        for loss in losses
    )

_DICE = ("dice", "self-adjusting-dice", "dice-batch")
# The text task (losslab.arena.text_task) with its model, on 6000 balanced training passages.
_TEXT_TASK = {"dataset": "shakespeare-genre", "model": "bag", "num_samples": 6000}
# The paper's code suggests n in {1, sqrt(D), D}; n = 1 underfits here (41% at 4000 samples).
_HARMONIC_HEADS = ("harmonic:distance=euclidean,n=16", "harmonic:distance=cosine,n=16")

PRESETS = {
    p.name: p
    for p in (
        Preset(
            "minimal",
            "The first arena: seven losses, 40% symmetric noise on MNIST-1D, two seeds.",
            {"losses": list(DEFAULT_LOSSES)},
            _robust_claims("40% symmetric label noise"),
        ),
        Preset(
            "noisy-labels",
            "GCE, SCE, NCE+RCE and ALDR-KL against CE at 20/40/60% symmetric noise on MNIST-1D.",
            {
                "losses": ["ce", *_ROBUST],
                "noise_rates": [0.2, 0.4, 0.6],
                "seeds": 3,
                "noise": "symmetric",
            },
            _robust_claims("symmetric label noise, the gap growing with the noise rate"),
        ),
        Preset(
            "imbalance",
            "Focal, Dice and AnyLoss (F1) against CE on macro-F1 with a 10:1 long-tailed "
            "MNIST-1D, no label noise.",
            {
                "losses": ["ce", "focal", "dice", "anyloss-fbeta"],
                "noise": "none",
                "noise_rates": [0.0],
                "imbalance": 10.0,
                "seeds": 3,
            },
            tuple(
                Claim(
                    f"{paper} report better minority-class performance than CE under class "
                    "imbalance (here: higher macro-F1 on a balanced test set).",
                    "test_macro_f1",
                    "ce",
                    (loss,),
                    paper=paper,
                )
                for loss, paper in (
                    ("focal", "Lin et al. 2017 (focal)"),
                    ("dice", "Milletari et al. 2016; Li et al. 2020 (Dice)"),
                    ("anyloss-fbeta", "Han et al. 2024 (AnyLoss)"),
                )
            ),
        ),
        Preset(
            "calibration",
            "Temperature scaling and a correctness-aware temperature, fitted on 10% held-out "
            "(noisy) training data, against no calibration, on CE's test ECE.",
            {
                "losses": ["ce"],
                "calibrations": ["none", "temperature", "ca-temperature"],
                "holdout": 0.1,
                "noise_rates": [0.0, 0.4],
                "seeds": 3,
            },
            tuple(
                Claim(
                    f"{paper} report lower expected calibration error than the uncalibrated "
                    "network.",
                    "test_ece",
                    "ce",
                    (challenger,),
                    higher_is_better=False,
                    paper=paper,
                )
                for challenger, paper in (
                    ("ce + temperature", "Guo et al. 2017 (temperature scaling)"),
                    ("ce + ca-temperature", "Liu et al. 2024 (correctness-aware calibration)"),
                )
            ),
        ),
        Preset(
            "harmonic",
            "Harmonic heads (HarMax over Euclidean and cosine distances to class centres, "
            "n = 16 ≈ √D for the CNN's D = 320 features) against a linear softmax head, all "
            "trained with CE on 1200 clean MNIST-1D training samples.",
            {
                "losses": ["ce"],
                "heads": ["linear", *_HARMONIC_HEADS],
                "noise": "none",
                "noise_rates": [0.0],
                "num_samples": 1500,
                "seeds": 3,
            },
            (
                Claim(
                    "Baek et al. 2025 (harmonic loss): replacing the linear softmax head by "
                    "Euclidean distances to class centres with HarMax improves data "
                    "efficiency; here, with 1200 training samples, the harmonic head reaches "
                    "higher clean-test accuracy than the linear head.",
                    "test_acc",
                    "ce",
                    ("ce [harmonic euclidean n=16]",),
                    paper="Baek et al. 2025 (harmonic loss)",
                ),
                Claim(
                    "Miller-Golub et al. 2026: among distance layers, cosine gives the best "
                    "accuracy for its cost in vision; here the cosine harmonic head's "
                    "clean-test accuracy is within 1 point of the Euclidean harmonic head's "
                    "or better.",
                    "test_acc",
                    "ce [harmonic euclidean n=16]",
                    ("ce [harmonic cosine n=16]",),
                    margin=0.01,
                    paper="Miller-Golub et al. 2026 (distance layers)",
                ),
            ),
        ),
        Preset(
            "cleaning",
            "Cleaning the data against a robust loss: CE, GCE and SCE, each plain and after "
            "cleanlab (5-fold out-of-sample probabilities of the same model and loss, "
            "find_label_issues, train on the kept samples), at 20/40/60% symmetric and 20/40% "
            "pair-flip noise on MNIST-1D (2000 samples) and digits, 3 seeds.",
            {
                "losses": ["ce", *_ROBUST[:2]],
                "cleaning": ["none", "cleanlab"],
                "variants": [
                    {"dataset": "mnist1d", "num_samples": 2000, "noise": "symmetric",
                     "noise_rates": [0.2, 0.4, 0.6]},
                    {"dataset": "mnist1d", "num_samples": 2000, "noise": "asymmetric",
                     "noise_rates": [0.2, 0.4]},
                    {"dataset": "digits", "noise": "symmetric", "noise_rates": [0.2, 0.4, 0.6]},
                    {"dataset": "digits", "noise": "asymmetric", "noise_rates": [0.2, 0.4]},
                ],
                "seeds": 3,
            },
            (
                Claim(
                    "Northcutt et al. 2021 (confident learning, cleanlab): pruning the samples "
                    "whose labels out-of-sample predictions find likely wrong, then training "
                    "with CE, reaches higher clean-test accuracy than CE on the noisy labels.",
                    "test_acc",
                    "ce",
                    ("ce + cleanlab",),
                    paper="Northcutt et al. 2021 (confident learning)",
                ),
                *(
                    Claim(
                        f"{_ROBUST_PAPERS[loss]} against the practitioner's standard: the "
                        "noise-robust loss on the noisy labels reaches higher clean-test "
                        "accuracy than CE after cleanlab.",
                        "test_acc",
                        "ce + cleanlab",
                        (loss,),
                        paper=_ROBUST_PAPERS[loss],
                    )
                    for loss in _ROBUST[:2]
                ),
                Claim(
                    "Cleaning adds to a robust loss: GCE after cleanlab reaches higher "
                    "clean-test accuracy than GCE on the noisy labels.",
                    "test_acc",
                    "gce",
                    ("gce + cleanlab",),
                    paper="Northcutt et al. 2021 (confident learning)",
                ),
                Claim(
                    "Cleaning adds to a robust loss: SCE after cleanlab reaches higher "
                    "clean-test accuracy than SCE on the noisy labels.",
                    "test_acc",
                    "sce",
                    ("sce + cleanlab",),
                    paper="Northcutt et al. 2021 (confident learning)",
                ),
            ),
        ),
        Preset(
            "text-noisy",
            "Genre classification of 64-token Shakespeare passages (comedy / history / "
            "tragedy, 6000 balanced training passages, a mean-of-embeddings classifier): GCE, "
            "SCE, NCE+RCE and ALDR-KL against CE at 20/40% symmetric label noise.",
            {
                "losses": ["ce", *_ROBUST],
                **_TEXT_TASK,
                "noise": "symmetric",
                "noise_rates": [0.2, 0.4],
                "seeds": 3,
            },
            (
                *_robust_claims(
                    "symmetric label noise in text classification (the setting in which NLKI, "
                    "2025, fine-tunes with SCE and GCE)"
                ),
            ),
        ),
        Preset(
            "text-imbalance",
            "Genre classification of Shakespeare passages with a 10:1 long tail over the three "
            "genres (2000 / 632 / 200 training passages), clean labels: Dice, self-adjusting "
            "Dice and set-level Dice against CE on macro-F1 over a balanced test set.",
            {
                "losses": ["ce", *_DICE],
                **_TEXT_TASK,
                "noise": "none",
                "noise_rates": [0.0],
                "imbalance": 10.0,
                "seeds": 3,
            },
            (
                *(
                    Claim(
                        f"{paper}: {form} reaches a higher F1 than CE on imbalanced text "
                        "classification (here: macro-F1 on a balanced test set).",
                        "test_macro_f1",
                        "ce",
                        (loss,),
                        paper=paper,
                    )
                    for loss, form, paper in (
                        ("dice", "per-instance Dice",
                         "Li et al. 2020 (Dice loss for data-imbalanced NLP)"),
                        ("self-adjusting-dice",
                         "self-adjusting Dice (the official scripts' alpha = 0.01)",
                         "Li et al. 2020 (Dice loss for data-imbalanced NLP)"),
                        ("dice-batch", "set-level Dice (the V-Net form)",
                         "Milletari et al. 2016 (V-Net Dice)"),
                    )
                ),
            ),
        ),
        Preset(
            "lm",
            "Next-token prediction on four Shakespeare plays (local BPE, 512 tokens) with a "
            "2-layer transformer: CE (fused head), CE + PaLM z-loss, and DCO.",
            {
                "losses": ["ce", "ce:z_loss=0.0001", "dco"],
                "dataset": "shakespeare",
                "model": "transformer",
                "noise": "none",
                "noise_rates": [0.0],
                "seeds": 2,
                "epochs": 3,
                "num_samples": 1024,
                "batch_size": 16,
                "lr": 3e-3,
            },
            (
                Claim(
                    "Chowdhery et al. 2022 (PaLM): the auxiliary z-loss 1e-4 * logsumexp^2 "
                    "stabilises training without hurting quality (held-out log-perplexity "
                    "within 0.02 nats of CE).",
                    "test_nll",
                    "ce",
                    ("ce(z_loss=0.0001)",),
                    higher_is_better=False,
                    margin=0.02,
                    paper="Chowdhery et al. 2022 (PaLM z-loss)",
                ),
                Claim(
                    "Chen et al. 2025 (DCO): limiting confidence raises pass@N coverage; here "
                    "the held-out next-token coverage 1 - (1 - p_y)^16 exceeds CE's.",
                    "test_coverage16",
                    "ce",
                    ("dco",),
                    paper="Chen et al. 2025 (DCO)",
                ),
            ),
        ),
    )
}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise ValueError(
            f"arena: preset must be one of {', '.join(map(repr, PRESETS))}, got {name!r}"
        )
    return PRESETS[name]
