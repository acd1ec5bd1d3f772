def cost(w):
    import math
    J = math.sin(w) * w
    return J
