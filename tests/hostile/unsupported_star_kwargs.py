def cost(w, **options):
    J = w * 2
    return J
