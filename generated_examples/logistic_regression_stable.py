"""Logistic regression with a numerically stable loss: log(sigmoid(z)) = -logaddexp(0, -z).

Same model as logistic_regression.py (X (m, n), y (m,), w (n,), b scalar), but the
cross-entropy never forms p = sigmoid(z), so it stays finite for large |z| where log(p) or
log(1 - p) would give -inf. Its gradient is the same: dz = (sigmoid(z) - y) / m.
"""

# srcdiff: --wrt w,b --shapes "X=(m, n), y=(m,), w=(n,), b=()"
import numpy as np


def cost(w, b, X, y):
    z = X @ w + b
    J = np.mean(y * np.logaddexp(0, -z) + (1 - y) * np.logaddexp(0, z))
    return J
