"""The square root of a by Newton's iteration, differentiated through its iterations.

A while loop with a tolerance: the backward pass runs as many steps as the forward pass took,
in reverse. At convergence the gradient is that of sqrt: 1 / (2 sqrt(a)).
"""


def newton_sqrt(a):
    x = a
    while abs(x * x - a) > 1e-12 * a:
        x = 0.5 * (x + a / x)
    return x
