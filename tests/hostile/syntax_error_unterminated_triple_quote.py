def cost(w):
    J = w * 2
    """never closed
    return J
