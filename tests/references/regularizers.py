"""Loop references (NumPy/SciPy, float64) for VCL, the CS divergence terms and EQ-Net's WDR."""

import numpy as np
from scipy.special import logsumexp


def vcl(p, solutions, objective_values, energy_scale, tau, margin):
    p = np.asarray(p, dtype=float)
    c = np.asarray(objective_values, dtype=float)
    w = np.exp(-c / energy_scale - logsumexp(-c / energy_scale))
    u = np.log(p / (1 - p)) / tau
    con = rank = 0.0
    for q, sol in enumerate(np.asarray(solutions)):
        pos, neg = np.where(sol == 1)[0], np.where(sol == 0)[0]
        if len(pos):
            con += w[q] * -(logsumexp(u[pos]) - logsumexp(u))
        if len(pos) and len(neg):
            rank += w[q] * np.mean([max(margin - (p[i] - p[k]), 0.0) for i in pos for k in neg])
    return con, rank


def _gram(a, b, sigma):
    a, b = np.atleast_2d(a.T).T, np.atleast_2d(b.T).T
    d = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
    return np.exp(-d / (2 * sigma**2))


def cs_divergence(x, y, yp, sigma, paper_denominator=False):
    k = _gram(x, x, sigma)
    den = k.sum(1) ** 2 if paper_denominator else (k**2).sum(1)
    terms = [sum(sum(k[j, i] * g[j, i] for i in range(len(x))) / den[j] for j in range(len(x)))
             for g in (_gram(y, y, sigma), _gram(yp, yp, sigma), _gram(yp, y, sigma))]
    return np.log2(terms[0]) + np.log2(terms[1]) - 2 * np.log2(terms[2])


def wdr(weights, a, b, ddof, target=1.8):
    out = []
    for w in weights:
        w = np.asarray(w, dtype=float).ravel()
        z = (w - w.mean()) / w.std(ddof=ddof)
        out.append(a * np.mean(z**3) ** 2 + b * (np.mean(z**4) - target) ** 2)
    return float(np.mean(out))
