K = 2.0


def cost(w):
    global K
    J = w * K
    return J
