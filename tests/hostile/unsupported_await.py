def cost(w):
    J = await w
    return J
