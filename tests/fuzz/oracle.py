"""An independent AD system as a second opinion: autograd or JAX, whichever is importable.

Neither is a dependency of srcdiff or of its tests (``pip install -e ".[fuzz]"`` adds autograd).
The program's own source runs under the oracle: ``import numpy`` gives the oracle's NumPy
(``autograd.numpy`` or ``jax.numpy``) and ``import math`` a shim of the same functions written
with it, so the very text srcdiff differentiated is differentiated again by other means.

Central differences cannot judge a derivative where the function oscillates faster than any
practical step; an AD oracle can, so the fuzzer compares with it at every usable point, and with
central differences only where they can see the slope.
"""

from __future__ import annotations

import builtins
import importlib.util
import math
import types
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


class OracleUnsupported(Exception):
    """The oracle cannot differentiate this program (a function it has no derivative for)."""


def _math_shim(xnp: Any, special: Any) -> types.ModuleType:
    """``math`` written with the oracle's NumPy, for the functions srcdiff supports."""
    shim = types.ModuleType("math")

    def log(x, base=None):
        return xnp.log(x) if base is None else xnp.log(x) / xnp.log(base)

    def hypot(*xs):
        return xnp.sqrt(sum(x * x for x in xs))

    functions = {
        "exp": xnp.exp,
        "expm1": xnp.expm1,
        "exp2": lambda x: xnp.power(2.0, x),
        "log": log,
        "log1p": xnp.log1p,
        "log2": lambda x: xnp.log(x) / math.log(2.0),
        "log10": lambda x: xnp.log(x) / math.log(10.0),
        "sqrt": xnp.sqrt,
        "cbrt": lambda x: xnp.sign(x) * xnp.abs(x) ** (1.0 / 3.0),
        "sin": xnp.sin,
        "cos": xnp.cos,
        "tan": xnp.tan,
        "asin": xnp.arcsin,
        "acos": xnp.arccos,
        "atan": xnp.arctan,
        "atan2": xnp.arctan2,
        "sinh": xnp.sinh,
        "cosh": xnp.cosh,
        "tanh": xnp.tanh,
        "asinh": xnp.arcsinh,
        "acosh": xnp.arccosh,
        "atanh": xnp.arctanh,
        "erf": special.erf,
        "erfc": special.erfc,
        "hypot": hypot,
        "pow": lambda a, b: a**b,
        "fabs": xnp.abs,
    }
    for name, fn in functions.items():
        setattr(shim, name, fn)
    for name in ("pi", "e", "tau", "inf", "nan"):
        setattr(shim, name, getattr(math, name))
    return shim


class Oracle:
    """Gradients of a program's source, by an AD system other than srcdiff."""

    name = "none"

    def __init__(self, xnp: Any, special: Any) -> None:
        self.xnp = xnp
        self.math = _math_shim(xnp, special)

    def load(self, source: str, function: str) -> Callable[..., Any]:
        """The function of ``source``, with numpy and math bound to the oracle's."""
        real_import = builtins.__import__

        def importer(name, globals=None, locals=None, fromlist=(), level=0):
            if name == "numpy":
                return self.xnp
            if name == "math":
                return self.math
            return real_import(name, globals, locals, fromlist, level)

        scope: dict[str, Any] = {"__builtins__": {**builtins.__dict__, "__import__": importer}}
        exec(compile(source, f"<{self.name} oracle>", "exec"), scope)
        return scope[function]

    def gradients(
        self, source: str, function: str, point: dict[str, Any], wrt: Sequence[str]
    ) -> list[Any]:
        """The gradients of the source's ``function`` at ``point`` with respect to ``wrt``."""
        return self.value_and_gradients(source, function, point, wrt)[1]

    def value_and_gradients(
        self, source: str, function: str, point: dict[str, Any], wrt: Sequence[str]
    ) -> tuple[float, list[Any]]:
        """The value (as the oracle computes it) and the gradients."""
        raise NotImplementedError


class Autograd(Oracle):
    name = "autograd"

    def __init__(self) -> None:
        import autograd.numpy as anp
        from autograd.scipy import special

        super().__init__(anp, special)

    def value_and_gradients(self, source, function, point, wrt):
        import autograd

        fn = self.load(source, function)

        def of(values):
            return fn(**{**point, **dict(zip(wrt, values))})

        try:
            value, grads = autograd.value_and_grad(of)(tuple(point[n] for n in wrt))
        except Exception as e:  # its own limits and bugs are not srcdiff's failures
            raise OracleUnsupported(f"{type(e).__name__}: {e}") from None
        return float(value), [np.asarray(g, dtype=float) if np.ndim(g) else float(g) for g in grads]


class Jax(Oracle):
    name = "jax"

    def __init__(self) -> None:
        import jax

        jax.config.update("jax_enable_x64", True)  # float64, as the check is
        import jax.numpy as jnp
        from jax.scipy import special

        super().__init__(jnp, special)

    def value_and_gradients(self, source, function, point, wrt):
        import jax

        fn = self.load(source, function)

        def of(*values):
            return fn(**{**point, **dict(zip(wrt, values))})

        try:
            value, grads = jax.value_and_grad(of, argnums=tuple(range(len(wrt))))(
                *(point[n] for n in wrt)
            )
        except Exception as e:  # its own limits and bugs are not srcdiff's failures
            raise OracleUnsupported(f"{type(e).__name__}: {e}") from None
        return float(value), [np.asarray(g, dtype=float) if np.ndim(g) else float(g) for g in grads]


BACKENDS = {"autograd": Autograd, "jax": Jax}


def find_oracle(preference: str = "auto") -> Oracle | None:
    """The oracle to compare with: ``"autograd"``, ``"jax"``, ``"none"``, or ``"auto"`` (the
    first of autograd and JAX that imports; None when neither does)."""
    if preference == "none":
        return None
    names = list(BACKENDS) if preference == "auto" else [preference]
    for name in names:
        module = "autograd" if name == "autograd" else "jax"
        if importlib.util.find_spec(module) is None:
            if preference != "auto":
                raise RuntimeError(f"--oracle {name}: {module} is not installed")
            continue
        try:
            return BACKENDS[name]()
        except ImportError as e:  # autograd.scipy needs SciPy: the fuzz extra installs it
            if preference != "auto":
                raise RuntimeError(f"--oracle {name}: {e}") from None
    return None
