def cost(w):
    J = yield from w
    return J
