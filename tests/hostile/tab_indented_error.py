def cost(w):
	J = w *	foo(w)
	return J
