def cost(w):
    J = t * w
    t = w * 2
    return J
