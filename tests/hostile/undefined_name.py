def cost(w):
    J = w * k
    return J
