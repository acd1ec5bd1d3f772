"""Logistic regression: mean binary cross-entropy of sigmoid(X @ w + b), written the usual way.

X (m, n) holds one sample per row, y (m,) the 0/1 labels, w (n,) the weights and b the scalar
bias. The sigmoid is spelled out as 1 / (1 + exp(-z)) and the loss takes np.log of p and 1 - p,
as in most course notes. By hand the gradient is dz = (p - y) / m, dw = X.T @ dz, db = sum(dz).
"""

# srcdiff: --wrt w,b --shapes "X=(m, n), y=(m,), w=(n,), b=()"
import numpy as np


def cost(w, b, X, y):
    m = X.shape[0]
    z = X @ w + b
    p = 1 / (1 + np.exp(-z))
    J = -np.sum(y * np.log(p) + (1 - y) * np.log(1 - p)) / m
    return J
