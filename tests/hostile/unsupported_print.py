def cost(w):
    J = w * 2
    print(J)
    return J
