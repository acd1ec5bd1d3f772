def cost(w, *rest):
    J = w * 2
    return J
