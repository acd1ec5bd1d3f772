import math


def cost(w, b):
	J = math.exp(w) * b
	return J
