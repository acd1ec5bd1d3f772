def cost(w):
    def square(t):
        return t * t
    J = w * 2
    return J
