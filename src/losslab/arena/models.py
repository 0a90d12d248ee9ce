"""Small classifiers for 1-D signals of shape (N, C, L) (the CNN also takes (N, L)) and, for
the MLP, inputs of any shape, with a linear or a harmonic head."""

from __future__ import annotations

from torch import Tensor, nn

HEADS = ("linear", "harmonic")


def build_head(
    head: str, in_features: int, num_classes: int, *, distance: str = "euclidean", n: float = 1.0
) -> nn.Module:
    """The classifier head: ``nn.Linear`` (logits ``Wx + b``) or
    :class:`losslab.heads.HarmonicHead` (logits ``-n·log(D(x, w_c) + 1e-4)``, whose softmax is
    HarMax; Baek et al. 2025, arXiv 2502.01628)."""
    if head == "linear":
        return nn.Linear(in_features, num_classes)
    if head == "harmonic":
        from ..heads import HarmonicHead

        return HarmonicHead(in_features, num_classes, distance=distance, n=n)
    raise ValueError(f"build_head: head must be one of {', '.join(map(repr, HEADS))}, got {head!r}")


class CNN1d(nn.Module):
    """Three 1-D convolutions (the last two stride 2) and a head: about 10k weights at
    width 32 on MNIST-1D, enough for ~92% clean test accuracy in 20 epochs. Inputs are
    (N, in_channels, L), or (N, L) with one channel."""

    def __init__(
        self, length: int, num_classes: int, width: int = 32, *, in_channels: int = 1,
        head: str = "linear", head_distance: str = "euclidean", head_n: float = 1.0,
    ) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv1d(in_channels, width, 5, padding=2),
            nn.ReLU(),
            nn.Conv1d(width, width, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv1d(width, width, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
        )
        reduced = (((length + 1) // 2) + 1) // 2  # two stride-2 convolutions with padding 1
        self.head = build_head(
            head, width * reduced, num_classes, distance=head_distance, n=head_n
        )

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 2:  # a table's rows read as one-channel signals
            x = x.unsqueeze(1)
        out: Tensor = self.head(self.features(x))
        return out


class MLP(nn.Module):
    """Two hidden ReLU layers of ``4 * width`` units and a head, on the flattened input of
    ``length`` values."""

    def __init__(
        self, length: int, num_classes: int, width: int = 32, *,
        head: str = "linear", head_distance: str = "euclidean", head_n: float = 1.0,
    ) -> None:
        super().__init__()
        hidden = 4 * width
        # Built in the same order as before the head option, so linear-head runs keep their
        # initialisation.
        self.features = nn.Sequential(
            nn.Flatten(),
            nn.Linear(length, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
        )
        self.head = build_head(head, hidden, num_classes, distance=head_distance, n=head_n)

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.head(self.features(x))
        return out


def build_model(
    name: str,
    length: int,
    num_classes: int,
    width: int,
    *,
    in_channels: int = 1,
    head: str = "linear",
    head_distance: str = "euclidean",
    head_n: float = 1.0,
) -> nn.Module:
    """``cnn`` on signals of ``in_channels`` x ``length``, or ``mlp`` on ``length`` inputs."""
    if name == "cnn":
        return CNN1d(length, num_classes, width, in_channels=in_channels, head=head,
                     head_distance=head_distance, head_n=head_n)
    if name == "mlp":
        return MLP(length, num_classes, width, head=head, head_distance=head_distance, head_n=head_n)
    if name == "bag":  # token ids (N, L) of the text task; 2·width embedding dimensions
        from .text_model import EmbeddingBagClassifier
        from .text_task import VOCAB_SIZE

        head_module = build_head(head, 2 * width, num_classes, distance=head_distance, n=head_n)
        return EmbeddingBagClassifier(VOCAB_SIZE, 2 * width, head_module)
    raise ValueError(f"build_model: model must be 'cnn', 'mlp' or 'bag', got {name!r}")
