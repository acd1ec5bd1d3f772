def cost(w, b):
    from math import exp as e
    J = e(w * b)
    return J
