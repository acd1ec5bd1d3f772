def cost(w):
    """Only a docstring."""
