"""Linear regression: mean squared error of X @ w + b against y over m samples.

X (m, n) holds one sample per row, y (m,) the targets, w (n,) the weights and b the scalar
bias. By hand: dr = 2 * r / m for the residual r, dw = X.T @ dr, db = sum(dr).
"""

# srcdiff: --wrt w,b --shapes "X=(m, n), y=(m,), w=(n,), b=()"
import numpy as np


def cost(w, b, X, y):
    r = X @ w + b - y
    J = np.mean(r**2)
    return J
