"""Loop reference of the official harmonic head (grow-crystals DistLayer conventions):
squared distance + eps, divided by the row minimum, raised to -n, normalised."""

import math


def official_harmonic_probabilities(x, w, n, eps=1e-4):
    rows = []
    for xi in x.tolist():
        sq = [sum((a - b) ** 2 for a, b in zip(xi, wc, strict=True)) + eps for wc in w.tolist()]
        low = min(sq)
        powered = [(s / low) ** (-n) for s in sq]
        total = sum(powered)
        rows.append([v / total for v in powered])
    return rows


def harmonic_loss_from_distances(d, y, n):
    powered = [v ** (-n) for v in d]
    return -math.log(powered[y] / sum(powered))
