def cost(w, lock):
    with lock:
        J = w * 2
    return J
