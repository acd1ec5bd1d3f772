"""f = (x + y) * max(y, z): max routes the gradient to its winning input.

At x=1, y=2, z=0: f = 6, df/dx = 2, df/dy = 5, df/dz = 0.
"""


def f(x, y, z):
    return (x + y) * max(y, z)
