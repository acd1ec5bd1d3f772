def cost(w):
    J = 2 * foo(w)
    return J
