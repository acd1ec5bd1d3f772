def cost(w): return w * w
