async def cost(w):
    J = w * 2
    return J
