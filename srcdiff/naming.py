"""Names, given once, at emit time.

User names stay (a reassigned ``a`` prints as ``a``, ``a_1``, ``a_2``); the adjoint of ``v`` is
``d<out>_d<v>``; a compiler temporary is named from what it computes (``w_x`` for ``w * x``,
``exp_z`` for ``exp(z)``), never from a counter, so adding a statement elsewhere does not rename it.
A clash with any name the user wrote is settled by appending underscores, so a user variable called
``dJ_dw``, ``tape`` or ``math`` keeps working.
"""

from __future__ import annotations

import keyword

from .ir import Atom, Const, GradProgram, Node, Var
from .prims import PRIMS

OPWORDS = {
    "add": "sum",
    "sub": "diff",
    "mul": "prod",
    "div": "quot",
    "pow": "pow",
    "neg": "neg",
    "floordiv": "fdiv",
    "select": "sel",
    "and": "cond",
    "copy": "copy",
}
MAX_NAME = 32


def const_fragment(value: float) -> str:
    """A constant as a name fragment: ``1.5`` -> ``1_5``, ``-2`` -> ``m2``, ``1e+20`` -> ``1e20``,
    ``1e-05`` -> ``1em05``; any other character becomes ``_``."""
    try:
        text = repr(value)
    except ValueError:  # an int over the digit limit of str()
        text = "big"
    text = text.replace("e+", "e").replace(".", "_").replace("-", "m")
    return "".join(c if ("_" + c).isidentifier() else "_" for c in text)


def identifier(base: str) -> str:
    """``base`` made a valid identifier: other characters become ``_``, a leading digit gets a
    ``c`` before it (``2_gt_w`` -> ``c2_gt_w``)."""
    if base.isidentifier() or not base:
        return base or "_"
    base = "".join(c if ("_" + c).isidentifier() else "_" for c in base)
    return base if base.isidentifier() else "c" + base


class Namer:
    """Hands out unique, stable names for the values of one generated module."""

    def __init__(self, prog: GradProgram, reserved: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.prog = prog
        self.out = prog.function.result_name
        self.taken: set[str] = set(prog.function.used_names) | set(reserved)
        self.names: dict[Var, str] = {}
        self.defs: dict[Var, Node] = {n.out: n for n in prog.forward + prog.backward}
        for p in prog.function.params:
            self.names[p.var] = p.name

    def fresh(self, base: str) -> str:
        """``base`` itself if nobody uses it, else ``base_``, ``base__``, ... (deterministic)."""
        base = identifier(base)
        if keyword.iskeyword(base):
            base = base + "_"
        name, k = base, 1
        while name in self.taken:
            name, k = self.repeat(base, k), k + 1
        self.taken.add(name)
        return name

    def repeat(self, base: str, k: int) -> str:
        """The ``k``-th alternative to a taken ``base``: ``base_``, ``base__``, ..."""
        return base + "_" * k

    def name(self, var: Var) -> str:
        if var not in self.names:
            if var.is_user and var.version == 0:
                self.names[var] = var.name  # type: ignore[assignment]
                self.taken.add(var.name)  # type: ignore[arg-type]
            else:
                self.names[var] = self.fresh(self.label(var))
        return self.names[var]

    def label(self, var: Var) -> str:
        """What the value would like to be called (not yet made unique)."""
        if var in self.names:
            return self.names[var]
        if var.is_user:
            return var.name if var.version == 0 else f"{var.name}_{var.version}"  # type: ignore[return-value]
        if var is self.prog.seed:
            return "d" + self.out
        if var.adjoint_of is not None:
            return f"d{self.out}_d{self.label(var.adjoint_of)}"
        if var.hint:
            return var.hint
        return self._derived(var)

    def _leaves(self, var: Var, depth: int = 0) -> list[str]:
        node = self.defs.get(var)
        if (
            var.is_user
            or var.adjoint_of is not None
            or var is self.prog.seed
            or node is None
            or depth > 8
        ):
            return (
                [self.label(var)]
                if (var.is_user or var.adjoint_of is not None or var is self.prog.seed)
                else []
            )
        found: list[str] = []
        for a in node.args:
            if isinstance(a, Var):
                found += self._leaves(a, depth + 1)
        return found

    def _operand(self, a: Atom) -> str:
        """An operand as a name fragment: its label, or the digits of a constant."""
        if isinstance(a, Const):
            return const_fragment(a.value)
        return self.label(a)

    def _derived(self, var: Var) -> str:
        node = self.defs.get(var)
        if node is None:
            return "t"
        leaves = list(dict.fromkeys(self._leaves(var)))
        prim = PRIMS[node.prim]
        if prim.kind == "compare":
            # hypot_x_y != 0 -> hypot_x_y_nonzero; a > b -> a_gt_b
            left, right = (self._operand(a) for a in node.args)
            if isinstance(node.args[1], Const) and node.args[1].value == 0:
                word = {"ne": "nonzero", "eq": "zero", "gt": "positive", "lt": "negative"}
                parts = [left, word.get(node.prim, node.prim + "_0")]
            else:
                parts = [left, node.prim, right]
        elif node.prim == "pow" and isinstance(node.args[1], Const) and leaves:
            power = {2: "sq", 3: "cubed"}.get(node.args[1].value, "pow")  # type: ignore[call-overload]
            parts = leaves[:3] + [power]
        elif node.prim == "pow":
            base, exponent = (self._operand(a) for a in node.args)
            parts = (
                ["pow", base, exponent]
                if isinstance(node.args[0], Const)
                else [base, "pow", exponent]
            )
        elif prim.kind == "call" and not leaves:
            # A call on constants only (math.log(2)): name it after its arguments.
            consts = [const_fragment(a.value) for a in node.args if isinstance(a, Const)]
            parts = [prim.symbol] + consts
        elif prim.kind in ("attr", "getitem") or node.prim in ("len", "np.shape", "reshape"):
            # x.T -> x_T, X.shape -> X_shape, x[1:] -> x_item
            word = {"getitem": "item", "len": "len", "np.shape": "shape", "reshape": "reshaped"}
            parts = [self._operand(node.args[0]), word.get(node.prim, prim.symbol)]
        elif prim.kind in ("call", "constant", "reduce", "helper"):
            parts = [prim.symbol.replace(".", "_")] + leaves[:3]
        elif len(leaves) >= 2:
            parts = leaves[:4]
        else:
            parts = [OPWORDS.get(node.prim, node.prim)] + leaves
        base = "_".join(parts)
        if len(base) > MAX_NAME:
            base = base[:MAX_NAME].rstrip("_")
        return base
