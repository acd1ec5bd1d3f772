def cost(w):
    J = math.sin(w)
    return J
