import math


def cost(θ, π):
    J = math.sin(θ) * π**2
    return J
