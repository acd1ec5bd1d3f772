"""The same squared error written in one line: same gradients, one adjoint per step."""


def cost(w, b, x, y):
    J = 0.5 * (w * x + b - y) ** 2
    return J
