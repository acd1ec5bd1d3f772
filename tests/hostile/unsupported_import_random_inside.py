def cost(w):
    import random
    J = w * random.random()
    return J
