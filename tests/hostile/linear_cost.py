def cost(w, b, x, y):
    c = w * x
    a = c + b
    d = a - y
    J = d**2 / 2
    return J
