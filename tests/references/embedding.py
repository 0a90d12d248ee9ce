"""Loop-based references for the embedding losses, written from the papers' formulas.

Deliberately naive: plain Python loops over anchors and pairs, float64, no masking tricks.
"""

import math


def cosine_matrix(x, r):
    xn = x / x.norm(dim=1, keepdim=True)
    rn = r / r.norm(dim=1, keepdim=True)
    return xn @ rn.T


def _pairs(y, ry, same, i):
    pos = [k for k in range(len(ry)) if ry[k] == y[i] and not (same and k == i)]
    neg = [k for k in range(len(ry)) if ry[k] != y[i]]
    return pos, neg


def multi_similarity(x, y, r=None, ry=None, alpha=2.0, beta=50.0, base=0.5, epsilon=None):
    same = r is None
    r, ry = (x, y) if same else (r, ry)
    s = cosine_matrix(x, r)
    total = 0.0
    for i in range(len(y)):
        pos, neg = _pairs(y, ry, same, i)
        if epsilon is not None and pos and neg:
            min_pos = min(s[i, k] for k in pos)
            max_neg = max(s[i, k] for k in neg)
            pos, neg = (
                [k for k in pos if s[i, k] - epsilon < max_neg],
                [k for k in neg if s[i, k] + epsilon > min_pos],
            )
        elif epsilon is not None:
            pos, neg = [], []
        lp = math.log1p(sum(math.exp(-alpha * (s[i, k] - base)) for k in pos)) / alpha
        ln = math.log1p(sum(math.exp(beta * (s[i, k] - base)) for k in neg)) / beta
        total += lp + ln
    return float(total / len(y))


def nt_xent(x, y, temperature, r=None, ry=None):
    same = r is None
    r, ry = (x, y) if same else (r, ry)
    s = cosine_matrix(x, r) / temperature
    losses = []
    for i in range(len(y)):
        pos, neg = _pairs(y, ry, same, i)
        for j in pos:
            den = math.exp(s[i, j]) + sum(math.exp(s[i, k]) for k in neg)
            losses.append(-math.log(math.exp(s[i, j]) / den))
    return float(sum(losses) / max(len(losses), 1))


def mw(x, y, r, ry, temperature):
    s = (x @ r.T) / temperature
    negatives = [s[i, k] for i in range(len(y)) for k in range(len(ry)) if ry[k] != y[i]]
    total = 0.0
    for i in range(len(y)):
        for j in range(len(ry)):
            if ry[j] == y[i]:
                total += sum(math.log1p(math.exp(-(s[i, j] - n))) for n in negatives)
    return float(total / len(y))


def opl(x, y, gamma):
    s = cosine_matrix(x, x)
    pos = [s[i, j] for i in range(len(y)) for j in range(len(y)) if i != j and y[i] == y[j]]
    neg = [s[i, j] for i in range(len(y)) for j in range(len(y)) if y[i] != y[j]]
    return float((1 - sum(pos) / len(pos)) + gamma * abs(sum(neg) / len(neg)))


def proto_triplet(q, y, protos, proto_labels, margin):
    total = 0.0
    for i in range(len(y)):
        d = [float(((q[i] - protos[c]) ** 2).sum().sqrt()) for c in range(len(proto_labels))]
        pos = [d[c] for c in range(len(d)) if proto_labels[c] == y[i]]
        neg = [d[c] for c in range(len(d)) if proto_labels[c] != y[i]]
        if pos and neg:
            total += max(max(pos) - min(neg) + margin, 0.0)
    return total / len(y)
