def cost(w):
    J = yield w
    return J
