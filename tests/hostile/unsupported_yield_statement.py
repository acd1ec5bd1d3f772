def cost(w):
    J = w * 2
    yield J
