"""Linear regression with the Huber loss on arrays: np.where picks the branch element by element.

The mean over the m samples of huber(X @ w - y): quadratic where |r| <= delta, linear elsewhere.
"""

# srcdiff: --wrt w --shapes "w=(n,), X=(m, n), y=(m,), delta=()"
import numpy as np


def huber_cost(w, X, y, delta):
    r = X @ w - y
    a = np.abs(r)
    loss = np.where(a <= delta, 0.5 * r**2, delta * (a - 0.5 * delta))
    return np.mean(loss)
