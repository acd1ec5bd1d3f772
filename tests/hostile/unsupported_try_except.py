def cost(w):
    try:
        J = 1 / w
    except ZeroDivisionError:
        J = 0.0
    return J
