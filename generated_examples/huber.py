"""The Huber loss of one residual r, written with an if: quadratic near 0, linear beyond delta.

The backward pass has the same if: each branch's derivative runs where its forward branch ran.
"""


def huber(r, delta):
    if abs(r) <= delta:
        loss = 0.5 * r**2
    else:
        loss = delta * (abs(r) - 0.5 * delta)
    return loss
