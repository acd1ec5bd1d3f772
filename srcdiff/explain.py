"""Explain a gradient step by step: ``srcdiff explain FILE --wrt w,b --at w=2 b=8 x=-2 y=2``.

One stage, then two printers. ``explain`` takes the function's SSA graph (the one ``--show-ir``
prints), evaluates it at the given values one node at a time, and walks it back rule by rule
(``rules.RULES``). It records a plain ``Explanation``: each step's value; for each step of the
backward pass the upstream gradient, the local derivative (symbolic where sympy can say it) and
their product; the sums where a value fans out; and beside each gradient a nudge check, which runs
the forward pass again with that one value moved by ε. ``render_text`` and ``render_markdown`` only
print that record. Loops, ifs and calls are first unrolled at the given values (``unroll``): the
explanation walks the straight line of steps the function runs there, each labeled with where it
ran (``line 15 (for i in range(n), pass 2 of 3, i = 1)``).

Unlike generating, explaining computes with the user's values. It does so from the SSA graph, one
primitive at a time: the file is never imported, and every step has its exact value, the
compiler's temporaries included (``d_sq`` in ``J = d**2 / 2``), which no variable of the generated
module holds.

The backward walk is the textbook one, rule by rule, without the optimizer's rewrites (fused
elementwise chains, the row maximum's cut edge), so each step can be read on its own. Its
gradients equal the generated module's up to rounding.

Example, ``c = w * x; J = c**2`` at w=3, x=2, --wrt w::

    forward:  c = 6, J = 36
    backward: dJ/dc = 1 x 2*c = 12, dJ/dw = 12 x x = 24
              (if w goes up by 0.001, J goes up by 0.024004)
"""

from __future__ import annotations

import ast
import math
import operator
import re
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import numpy_helpers
from .errors import SrcdiffError
from .evaluate import StepFailed, apply_prim, build_index
from .ir import Atom, Const, Function, GradProgram, Node, Var, walk
from .naming import Namer
from .prims import BROADCASTING, ELEMENTWISE_UNARY, NUMPY_REDUCTIONS
from .reverse import ARRAY_RULES, activity, check_wrt, uses_arrays
from .rules import BOUND_RULES, KINK_POLICY, RULE_FUNCTIONS, RULES, Rule
from .unroll import Place, has_structure, step_error, unroll

EPSILON = 1e-3  # the nudge: small enough for a first-order change, large enough to read


# ---- The record ------------------------------------------------------------------------------


@dataclass
class Step:
    """One value of the forward pass: a parameter, or one SSA node."""

    name: str
    expr: str | None  # what the node computes, as Python; None for a parameter
    line: int | None
    statement: str | None  # the source statement the node implements
    value: Any
    active: bool  # gets a gradient: depends on a --wrt parameter and reaches the result
    wrt: bool = False
    gradient: Any = None  # d(result)/d(step), once the backward pass has made it; None if inactive
    place: Place = Place()  # the loop pass, if side or call it ran in (see unroll)


@dataclass
class Nudge:
    """The check beside a gradient: move one value by ε, run the forward pass again, compare."""

    epsilon: float
    change: float | None  # how much the result moved; None when the forward pass raised
    slope: float  # the change per ε that the gradient predicts
    along_gradient: bool  # arrays move ε along the gradient's direction (a unit vector)
    close: bool
    error: str | None = None


@dataclass
class Part:
    """What one step sends back to one of its inputs: upstream gradient times local derivative."""

    target: str
    upstream: Any
    value: Any
    local: Any  # the local derivative's value where the step is scalar; None otherwise
    symbolic: str | None  # the local derivative as sympy prints it (``2*d``)
    vjp: str | None  # where sympy cannot state the local derivative: the product as a formula
    words: str | None  # and what it does, in words (``spread over every element of r``)
    elementwise: bool
    summed: bool  # summed back over the axes broadcasting stretched
    kink: str | None  # the kink policy the rule applies
    index: int = 1  # which of the target's parts this is, in forward order
    count: int = 1  # how many parts the target's gradient has (more than one: it fans out)


@dataclass
class Total:
    """A gradient complete: its parts added up where the value fans out, and its nudge check."""

    target: str
    parts: list[Any]
    value: Any
    nudge: Nudge | None


@dataclass
class BackwardStep:
    """One node of the backward pass, visited right to left."""

    step: Step
    upstream: Any
    parts: list[Part]
    totals: list[Total]  # gradients that are complete once this step has sent its parts


@dataclass
class Explanation:
    """Everything ``srcdiff explain`` prints, as plain data."""

    function: str
    result: str  # the returned value's name (J), as the gradients are written: dJ/dw
    value: Any  # the function's value
    wrt: list[str]
    params: list[Step]
    steps: list[Step]
    backward: list[BackwardStep]
    gradients: list[tuple[str, Any]]  # per --wrt name, what the generated f_grad returns
    epsilon: float = EPSILON
    array_mode: bool = False
    depends: bool = True  # whether the result depends on a --wrt parameter at all
    # The straight-line function explained: ``steps`` are its nodes, in order (with loops, ifs and
    # calls unrolled at these values; see unroll).
    program: Function | None = None


# ---- Evaluating rules ------------------------------------------------------------------------


def evaluate_rule(expr: ast.expr, env: Mapping[str, Any], params: Mapping[str, Any]) -> Any:
    """A rule's expression (``g * y * x**(y - 1)``) on values; calls name primitives.

    ``a if c else b`` evaluates only the branch taken, as Python does: the other may be undefined
    (``log(x)`` at x = 0).
    """

    def ev(e: ast.expr) -> Any:
        return evaluate_rule(e, env, params)

    if isinstance(expr, ast.Name):
        if expr.id in env:
            return env[expr.id]
        return apply_prim(expr.id, (), {})  # a named constant: pi
    if isinstance(expr, ast.Constant):
        return expr.value
    if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, ast.USub):
        return -ev(expr.operand)
    if isinstance(expr, ast.BinOp):
        ops = {
            ast.Add: operator.add,
            ast.Sub: operator.sub,
            ast.Mult: operator.mul,
            ast.Div: operator.truediv,
            ast.Pow: operator.pow,
            ast.MatMult: operator.matmul,
            ast.BitAnd: operator.and_,
        }
        return ops[type(expr.op)](ev(expr.left), ev(expr.right))
    if isinstance(expr, ast.Attribute) and expr.attr == "T":
        return ev(expr.value).T
    if isinstance(expr, ast.Compare):
        compare = {
            ast.Gt: operator.gt,
            ast.GtE: operator.ge,
            ast.Lt: operator.lt,
            ast.LtE: operator.le,
            ast.Eq: operator.eq,
            ast.NotEq: operator.ne,
        }
        return compare[type(expr.ops[0])](ev(expr.left), ev(expr.comparators[0]))
    if isinstance(expr, ast.IfExp):
        return ev(expr.body) if ev(expr.test) else ev(expr.orelse)
    if isinstance(expr, ast.Call):
        keywords = {
            kw.arg: (params.get(kw.value.id) if isinstance(kw.value, ast.Name) else kw.value.value)  # type: ignore[attr-defined]
            for kw in expr.keywords
        }
        prim = RULE_FUNCTIONS[ast.unparse(expr.func)]
        return apply_prim(prim, [ev(a) for a in expr.args], keywords)
    raise NotImplementedError(f"rule syntax not understood: {ast.unparse(expr)}")


# ---- Symbolic local derivatives --------------------------------------------------------------

_SYMPY_FUNCTIONS = {
    "exp": "exp", "log": "log", "sqrt": "sqrt", "sin": "sin", "cos": "cos", "tan": "tan",
    "sinh": "sinh", "cosh": "cosh", "tanh": "tanh", "asin": "asin", "acos": "acos",
    "atan": "atan", "arcsin": "asin", "arccos": "acos", "arctan": "atan", "asinh": "asinh",
    "acosh": "acosh", "atanh": "atanh", "erf": "erf", "erfc": "erfc", "sign": "sign",
}  # fmt: skip


class _NotSymbolic(Exception):
    """The rule holds something sympy cannot say as a formula (a branch, a comparison, a helper)."""


def _to_sympy(
    expr: ast.expr, env: Mapping[str, Any], decide: Callable[[ast.expr], Any] | None
) -> Any:
    import sympy

    def conv(e: ast.expr) -> Any:
        return _to_sympy(e, env, decide)

    if isinstance(expr, (ast.IfExp, ast.Compare)):
        # A branch or a comparison has one value at the point explained: take it.
        test = expr.test if isinstance(expr, ast.IfExp) else expr
        taken = decide(test) if decide is not None else None
        if taken is None or np.ndim(taken) != 0:
            raise _NotSymbolic(ast.unparse(expr))
        if isinstance(expr, ast.Compare):
            return sympy.Integer(int(bool(taken)))
        return conv(expr.body if taken else expr.orelse)

    if isinstance(expr, ast.Name):
        if expr.id in env:
            return env[expr.id]
        if expr.id == "pi":
            return sympy.pi
        raise _NotSymbolic(expr.id)
    if isinstance(expr, ast.Constant) and not isinstance(expr.value, bool):
        return _sympy_number(expr.value)
    if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, ast.USub):
        return -conv(expr.operand)
    if isinstance(expr, ast.BinOp):
        left, right = conv(expr.left), conv(expr.right)
        ops = {
            ast.Add: operator.add,
            ast.Sub: operator.sub,
            ast.Mult: operator.mul,
            ast.Div: operator.truediv,
            ast.Pow: operator.pow,
        }
        if type(expr.op) not in ops:
            raise _NotSymbolic(ast.unparse(expr))
        return ops[type(expr.op)](left, right)
    if isinstance(expr, ast.Call) and not expr.keywords and len(expr.args) == 1:
        name = ast.unparse(expr.func).removeprefix("np.")
        if name in _SYMPY_FUNCTIONS:
            return getattr(sympy, _SYMPY_FUNCTIONS[name])(conv(expr.args[0]))
    raise _NotSymbolic(ast.unparse(expr))


def _sympy_number(value: Any) -> Any:
    import sympy

    if isinstance(value, float) and value.is_integer():
        return sympy.Integer(int(value))  # 2.0 reads as 2 in a formula
    return sympy.sympify(value)


def symbolic_local(
    expr: ast.expr,
    names: Mapping[str, Any],
    decide: Callable[[ast.expr], Any] | None = None,
) -> str | None:
    """The local derivative a rule states, as sympy prints it: the adjoint with ``g`` = 1.

    ``names`` maps the rule's names (x, y, ans) to the step's own names, or to numbers where the
    step reads a constant. ``decide`` evaluates a condition at the point explained, so a rule's
    branch (``g * ans * log(x) if x != 0 else 0.0``) reads as the branch taken. None where the
    rule is not a formula sympy can state.
    """
    import sympy

    env: dict[str, Any] = {"g": sympy.Integer(1)}
    for key, value in names.items():
        env[key] = sympy.Symbol(value) if isinstance(value, str) else _sympy_number(value)
    try:
        result = _to_sympy(expr, env, decide)
    except (_NotSymbolic, ArithmeticError, TypeError, ValueError):
        return None
    if result.has(sympy.nan, sympy.zoo, sympy.oo, -sympy.oo):
        return None
    return sympy.sstr(result, full_prec=False)


# ---- Building the explanation ----------------------------------------------------------------


_HUG_POWER = re.compile(
    r"(?<![\w.)\]])([A-Za-z_][\w.]*|\d[\w.]*) \*\* (-?[A-Za-z_][\w.]*|-?\d[\w.]*)(?![\w.(\[])"
)


def explain(
    fn: Function,
    wrt: Sequence[str],
    values: Mapping[str, Any],
    *,
    source: str | None = None,
    epsilon: float = EPSILON,
    functions: Sequence[Function] = (),
) -> Explanation:
    """Evaluate ``fn`` at ``values``, walk its gradient back step by step, and record it all.

    ``values`` holds a number, or a (nested) list or array for an array, per parameter; parameters
    with a default may be left out. Loops, ifs and calls are unrolled at these values (see
    ``unroll``); ``functions`` are the ones ``fn`` calls (``load_functions`` lists them after it).
    Bad input (an unknown or missing name, a step that raises at these values, a result that is
    not a scalar) raises ``SrcdiffError`` located at the cause.
    """
    names = list(wrt)
    try:
        check_wrt(fn, names)
    except SrcdiffError as e:
        raise e.located(fn.filename, source) from None
    callees = {f.name: f for f in functions if f is not fn}
    return _Explainer(fn, names, values, source, epsilon, callees).run()


class _NumberedNamer(Namer):
    """A Namer that tells repeats apart by number (``c_item_2``) instead of underscores."""

    def repeat(self, base: str, k: int) -> str:
        return f"{base}_{k + 1}"


class _Explainer:
    def __init__(
        self,
        fn: Function,
        wrt: list[str],
        values: Mapping[str, Any],
        source: str | None,
        epsilon: float,
        functions: Mapping[str, Function],
    ) -> None:
        self.fn = fn
        self.wrt = wrt
        self.source = source
        self.epsilon = epsilon
        self.inputs = self.bind(values)
        self.places: dict[Var, Place] = {}
        if has_structure(fn):
            self.unroll(functions)
        fn = self.fn
        self.array_mode = uses_arrays(fn)
        self.active = activity(fn, wrt)
        prog = GradProgram(fn, wrt, fn.body, [], Var(hint="d" + fn.result_name), [])
        # Unrolled, every temporary of a loop's body repeats once per pass: numbered (c_item,
        # c_item_2, c_item_3) they stay readable where c_item__ would not.
        self.namer = _NumberedNamer(prog) if self.places else Namer(prog)
        result = fn.result
        if isinstance(result, Var) and not result.is_user and result not in self.inputs:
            self.namer.names[result] = self.namer.fresh(fn.result_name)
        self.names = {p.var: p.name for p in fn.params}
        self.names.update((n.out, self.namer.name(n.out)) for n in fn.body)

    def unroll(self, functions: Mapping[str, Function]) -> None:
        """Explain the straight line of steps the function runs at these values."""
        for node in walk(self.fn.body):
            name = node.param("function") if node.prim == "call" else None
            if name is not None and name not in functions:
                raise self.error(
                    node,
                    f"explain needs the definition of {name}, which {self.fn.name} calls",
                    "explain the file that defines it (srcdiff explain FILE reads the whole file)",
                )
        try:
            with np.errstate(all="ignore"):
                unrolled = unroll(self.fn, self.inputs, functions, self.source)
        except StepFailed as e:
            raise self.step_failed(e) from None
        self.fn = unrolled.function
        self.places = unrolled.places

    # -- helpers

    def step_failed(self, e: StepFailed) -> SrcdiffError:
        """A step raised at the --at values: the user's arithmetic, or explain's own limit."""
        if isinstance(e.error, NotImplementedError):  # explain's limit, not the user's error
            return self.error(e.node, str(e.error))
        stmt = e.node.stmt
        where = f" in {stmt.text}" if stmt else ""
        where += f" ({e.where})" if e.where else ""
        return self.error(
            e.node,
            f"{self.fn.name} raised {type(e.error).__name__}: {e.error}{where}, at {self.shown_values()}",
            "explain evaluates the function at the --at values: choose values where it is defined",
        )

    def error(self, node: Node | None, message: str, hint: str | None = None) -> SrcdiffError:
        return step_error(self.fn, node, message, hint, self.source)

    def bind(self, values: Mapping[str, Any]) -> dict[Var, Any]:
        """Each parameter's value: the one given, else its default; lists become arrays."""
        params = [p.name for p in self.fn.params]
        unknown = [n for n in values if n not in params]
        if unknown:
            raise self.error(
                None,
                f"--at names '{unknown[0]}', which is not a parameter of {self.fn.name}",
                f"its parameters: {', '.join(params)}",
            )
        missing = [p.name for p in self.fn.params if p.name not in values and p.default is None]
        if missing:
            raise self.error(
                None,
                f"explain needs a value for every parameter without a default; missing: {', '.join(missing)}",
                "add " + " ".join(f"{n}=..." for n in missing) + " to --at",
            )
        bound: dict[Var, Any] = {}
        for p in self.fn.params:
            if p.name in values:
                value = values[p.name]
                if isinstance(value, (list, tuple)):
                    value = np.asarray(value, dtype=float if p.name in self.wrt else None)
                bound[p.var] = value
            else:
                bound[p.var] = p.default.value  # type: ignore[union-attr]
        return bound

    def name(self, a: Atom) -> str:
        return repr(a.value) if isinstance(a, Const) else self.names[a]

    def shown_values(self) -> str:
        return ", ".join(f"{p.name}={format_input(self.inputs[p.var])}" for p in self.fn.params)

    def forward(self, override: Mapping[Var, Any] | None = None) -> dict[Var, Any]:
        """Every value of the forward pass; ``override`` replaces values (a nudge) as they are made.

        With an override, only the steps downstream of it run again (the others keep their
        values): an unrolled loop's nudges would otherwise rerun every pass for every value.
        """
        override = override or {}
        env = {v: override.get(v, value) for v, value in self.inputs.items()}
        moved: set[Var] | None = None
        if override:
            env = {**self.values, **env}
            moved = set(override)
        for node in self.fn.body:
            if moved is not None:
                if node.out in override:
                    env[node.out] = override[node.out]
                    continue
                if not any(isinstance(a, Var) and a in moved for a in node.args):
                    continue
                moved.add(node.out)
            args = [a.value if isinstance(a, Const) else env[a] for a in node.args]
            try:
                value = apply_prim(node.prim, args, dict(node.params))
            except Exception as e:  # the user's arithmetic at these values, reported as bad input
                raise StepFailed(node, e) from None
            env[node.out] = override.get(node.out, value)
        return env

    def atom(self, a: Atom, env: Mapping[Var, Any] | None = None) -> Any:
        return a.value if isinstance(a, Const) else (env if env is not None else self.values)[a]

    # -- the three passes

    def run(self) -> Explanation:
        fn = self.fn
        with np.errstate(all="ignore"):
            try:
                self.values = self.forward()
            except StepFailed as e:
                raise self.step_failed(e) from None
            self.result_value = self.atom(fn.result)
            if np.ndim(self.result_value) != 0 or not _is_number(self.result_value):
                raise self.error(
                    None,
                    f"explain needs a scalar result; {fn.result_name} is {format_value(self.result_value)} here",
                    "explain a scalar cost (J = np.sum(...), np.mean(...))",
                )
            params = [
                Step(
                    p.name,
                    None,
                    None,
                    None,
                    self.inputs[p.var],
                    p.var in self.active,
                    wrt=p.name in self.wrt,
                )
                for p in fn.params
            ]
            steps = [
                Step(
                    self.names[n.out],
                    self.expression(n),
                    n.stmt.line if n.stmt else None,
                    n.stmt.text if n.stmt else None,
                    self.values[n.out],
                    n.out in self.active,
                    place=self.places.get(n.out, Place()),
                )
                for n in fn.body
            ]
            self.step_of: dict[Var, Step] = {p.var: s for p, s in zip(fn.params, params)}
            self.step_of.update((n.out, s) for n, s in zip(fn.body, steps))
            backward = self.backward()
        gradients = []
        for name in self.wrt:
            step = next(s for s in params if s.name == name)
            if step.gradient is None:
                value = step.value
                step.gradient = (
                    np.zeros(np.shape(value)) if np.ndim(value) else 0.0
                )  # does not reach the result
            gradients.append((name, step.gradient))
        return Explanation(
            fn.name,
            fn.result_name,
            self.result_value,
            list(self.wrt),
            params,
            steps,
            backward,
            gradients,
            self.epsilon,
            self.array_mode,
            isinstance(fn.result, Var) and fn.result in self.active,
            fn,
        )

    def expression(self, node: Node) -> str:
        """The node as Python, with the names of this explanation (``d_sq / 2``)."""
        from .emit import Printer

        try:
            text = Printer(self.namer, {}, {"math": "math", "numpy": "np"}).node(node)[0]
        except Exception:  # a primitive the printer does not know: the IR's own form
            text = f"{node.prim}({', '.join(self.name(a) for a in node.args)})"
        return _HUG_POWER.sub(r"\1**\2", text)

    def backward(self) -> list[BackwardStep]:
        body = self.fn.body
        result = self.fn.result
        adjoint: dict[Var, Any] = {}
        if isinstance(result, Var) and result in self.active:
            adjoint[result] = 1.0
            self.step_of[result].gradient = 1.0
        # The first node reading each active value: once it has sent its part, the gradient is complete.
        first_use: dict[Var, int] = {}
        for i, node in enumerate(body):
            if node.out in self.active:
                for a in node.args:
                    if isinstance(a, Var) and a in self.active:
                        first_use.setdefault(a, i)
        parts: dict[Var, list[tuple[int, int, Part]]] = {}
        walked: list[BackwardStep] = []
        for i in reversed(range(len(body))):
            node = body[i]
            if node.out not in self.active:
                continue
            g = adjoint[node.out]
            sent = []
            for k, a in enumerate(node.args):
                if isinstance(a, Var) and a in self.active:
                    part = self.part(node, k, g)
                    parts.setdefault(a, []).append((i, k, part))
                    sent.append(part)
            totals = []
            for a in dict.fromkeys(a for a in node.args if isinstance(a, Var) and a in self.active):
                if first_use[a] != i:
                    continue
                ordered = [p for _, _, p in sorted(parts[a], key=lambda t: (t[0], t[1]))]
                total = ordered[0].value
                for n, p in enumerate(ordered):
                    p.index, p.count = n + 1, len(ordered)
                    if n:
                        total = total + p.value
                adjoint[a] = total
                self.step_of[a].gradient = total
                totals.append(
                    Total(self.name(a), [p.value for p in ordered], total, self.nudge(a, total))
                )
            walked.append(BackwardStep(self.step_of[node.out], g, sent, totals))
        return walked

    def rule(self, node: Node) -> Rule:
        if node.prim in BOUND_RULES and any(isinstance(a, Const) for a in node.args):
            return BOUND_RULES[node.prim]  # relu: the mask is read from the result
        return RULES[ARRAY_RULES.get(node.prim, node.prim) if self.array_mode else node.prim]

    def vjp(self, node: Node, k: int, g: Any, rule: Rule, args: list[Any]) -> Any:
        """The part of ``g`` that node's k-th input receives, from the node's rule."""
        ans = self.values[node.out]
        params = dict(node.params)
        if node.prim == "getitem":  # put back where it was read: zeros elsewhere
            fitted = numpy_helpers.unbroadcast(g, ans)
            return numpy_helpers.scatter(fitted, args[0], build_index(params["index"], args))
        expr, env = self.rule_env(node, k, g, rule, args)
        return evaluate_rule(expr, env, params)

    def rule_env(
        self, node: Node, k: int, g: Any, rule: Rule, args: list[Any]
    ) -> tuple[ast.expr, dict[str, Any]]:
        """The rule's expression for input k, and the values of the names it reads."""
        ans = self.values[node.out]
        params = dict(node.params)
        env: dict[str, Any] = {"g": g, "ans": ans}
        if node.prim in NUMPY_REDUCTIONS:
            env["shape"] = np.shape(args[0])
            env["count"] = np.size(args[0]) // max(np.size(ans), 1)
        if rule.inputs == ("*xs",):
            env.update(xi=args[k], x0=args[0], i=k)
            if node.prim == "np.concatenate":
                env["ends"] = numpy_helpers.concatenate_ends(*args, axis=params.get("axis") or 0)
            if rule.kink in ("max", "min"):
                env["wins"] = _wins(args, k, rule.kink)
            expr = rule.adjoints[0]
        else:
            env.update(zip(rule.inputs, args))
            expr = rule.adjoints[k]
        return expr, env

    def part(self, node: Node, k: int, g: Any) -> Part:
        args = [self.atom(a) for a in node.args]
        x, ans = args[k], self.values[node.out]
        rule = self.rule(node)
        elementwise = node.prim in ELEMENTWISE_UNARY or node.prim in BROADCASTING
        value = self.vjp(node, k, g, rule, args)
        if elementwise and isinstance(value, np.ndarray) and not np.all(np.isfinite(value)):
            # Where no gradient arrives, none leaves: 0 x an infinite local derivative is 0 here
            # (the branch np.where did not take), as the generated code's guard makes it.
            no_upstream = np.asarray(g) == 0
            if np.broadcast_shapes(no_upstream.shape, value.shape) == value.shape:
                value = np.where(no_upstream, 0.0, value)
        summed = False
        if self.array_mode and np.shape(value) != np.shape(x):
            value = numpy_helpers.unbroadcast(value, x)
            summed = True
        scalar = all(np.ndim(v) == 0 for v in (g, x, ans))
        local = self.vjp(node, k, 1, rule, args) if scalar else None
        names = self.rule_names(node, rule, k)
        arg_names = [self.name(a) for a in node.args]
        vjp, words = _vjp_words(node.prim, k, arg_names, args, self.names[node.out], ans)
        symbolic = None
        if node.prim != "getitem":
            expr, env = self.rule_env(node, k, 1, rule, args)

            def decide(test: ast.expr) -> Any:
                return evaluate_rule(test, env, dict(node.params))

            symbolic = symbolic_local(expr, names, decide)
            if symbolic is None and vjp is None and words is None:
                vjp = _rule_text(expr, {**names, "g": "upstream"}, dict(node.params), args[0])
        kink = KINK_POLICY[rule.kink] if rule.applies_kink(k) else None
        return Part(
            self.name(node.args[k]),
            g,
            value,
            local,
            symbolic,
            vjp,
            words,
            elementwise,
            summed,
            kink,
        )

    def rule_names(self, node: Node, rule: Rule, k: int) -> dict[str, Any]:
        """The rule's names as the step's own: a name (str) or a constant's value."""

        def own(a: Atom) -> Any:
            return a.value if isinstance(a, Const) else self.name(a)

        names: dict[str, Any] = {"ans": self.names[node.out]}
        if rule.inputs == ("*xs",):
            names.update(xi=own(node.args[k]), x0=own(node.args[0]), i=k)
        else:
            names.update(zip(rule.inputs, (own(a) for a in node.args)))
        return names

    def nudge(self, var: Var, gradient: Any) -> Nudge:
        """Move ``var`` by ε (an array: ε along its gradient), recompute everything downstream."""
        base = self.values[var]
        eps = self.epsilon
        if np.ndim(base) == 0:
            moved, slope, along = base + eps, float(gradient), False
        else:
            norm = float(np.linalg.norm(gradient))
            if norm > 0:
                direction = np.asarray(gradient, dtype=float) / norm
            else:
                direction = np.ones(np.shape(base)) / math.sqrt(np.size(base))
            moved, slope, along = base + eps * direction, norm, True
        try:
            env = self.forward({var: moved})
            change = float(self.atom(self.fn.result, env) - self.result_value)
        except StepFailed as e:
            stmt = e.node.stmt
            where = f" in {stmt.text}" if stmt else ""
            return Nudge(eps, None, slope, along, False, f"{type(e.error).__name__}{where}")
        expected = slope * eps
        close = math.isfinite(change) and abs(change - expected) <= 0.01 * abs(expected) + (
            1e-3 * eps * (1 + abs(slope))
        )
        return Nudge(eps, change, slope, along, close)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, complex, np.number, np.ndarray)) and not isinstance(
        value, (bool, np.bool_)
    )


def _wins(args: Sequence[Any], k: int, which: str) -> bool:
    """Whether argument k is the one max (min) returns: beats those before it, ties those after."""
    strict, loose = (operator.gt, operator.ge) if which == "max" else (operator.lt, operator.le)
    return all(
        (strict if j < k else loose)(args[k], other) for j, other in enumerate(args) if j != k
    )


def _rule_text(
    expr: ast.expr, names: Mapping[str, Any], params: Mapping[str, Any], first: Any
) -> str:
    """A rule with the step's names in place of the rule's (``upstream * (h > 0)``); keyword
    arguments as the generated code passes them (NumPy's defaults left out)."""
    names = {"shape": format_value(np.shape(first)), **names}

    class Rename(ast.NodeTransformer):
        def visit_Name(self, node: ast.Name) -> ast.AST:
            if node.id in names:
                value = names[node.id]
                return ast.Name(id=value if isinstance(value, str) else repr(value))
            return node

        def visit_keyword(self, node: ast.keyword) -> ast.AST | None:
            if isinstance(node.value, ast.Name):
                value = params.get(node.value.id)
                if value is None or value is False:
                    return None
                return ast.keyword(arg=node.arg, value=ast.Constant(value))
            return node

    renamed = Rename().visit(ast.parse(ast.unparse(expr), mode="eval"))
    return _HUG_POWER.sub(r"\1**\2", ast.unparse(renamed))


_MATMULS = {"matmul", "np.matmul", "np.dot"}


def _vjp_words(
    prim: str, k: int, names: list[str], args: list[Any], out: str, ans: Any
) -> tuple[str | None, str | None]:
    """The vector-Jacobian product of a structural step as a person writes it: (formula, words)."""
    x = names[k]
    if prim in _MATMULS and len(args) == 2:
        a, b = names
        forms = {
            (2, 2): ("upstream @ {b}.T", "{a}.T @ upstream"),
            (2, 1): ("np.outer(upstream, {b})", "{a}.T @ upstream"),
            (1, 2): ("{b} @ upstream", "np.outer({a}, upstream)"),
            (1, 1): ("upstream * {b}", "upstream * {a}"),
        }.get((np.ndim(args[0]), np.ndim(args[1])))
        return (forms[k].format(a=a, b=b) if forms else None), None
    if prim == "np.sum":
        return "upstream", f"spread over every element of {x} that was summed"
    if prim == "np.mean":
        count = np.size(args[0]) // max(np.size(ans), 1)
        return f"upstream / {count}", f"spread over every element of {x} that was averaged"
    if prim in ("np.max", "np.min"):
        which = "largest" if prim == "np.max" else "smallest"
        return "upstream", f"to the {which} elements of {x}, shared equally on a tie"
    if prim == "getitem":
        return "upstream", f"put back where {x} was read, zeros elsewhere"
    if prim in ("transpose", "np.transpose"):
        return "upstream.T", None
    if prim in ("reshape", "np.expand_dims", "np.squeeze"):
        return "upstream", f"laid out in the shape of {x}, {format_value(np.shape(args[k]))}"
    if prim in ("np.concatenate", "np.stack"):
        return "upstream", f"the piece where {x} was placed"
    if prim == "np.linalg.norm":
        return f"upstream * {x} / {out}", None
    if prim == "np.prod":
        return None, f"times the product of the other elements of {x}"
    if prim in ("abs", "fabs", "np.abs"):
        return None, f"the sign of {x}"
    if prim in ("max", "min"):  # scalar code: the local derivative itself
        which = "largest" if prim == "max" else "smallest"
        return None, f"1 if {x} is the first {which} argument, else 0"
    return None, None


# ---- Printing --------------------------------------------------------------------------------


GLUE = "\u00a0"  # a space no line break may replace (textwrap breaks at ASCII whitespace only)


def _wrap(text: str, width: int, first: str, rest: str, break_words: bool) -> list[str]:
    """``text`` wrapped to ``width``, never at a glued space, then glued spaces made plain."""
    lines = textwrap.wrap(
        text,
        width=width,
        initial_indent=first,
        subsequent_indent=rest,
        break_long_words=break_words,
        break_on_hyphens=False,
    ) or [first.rstrip()]
    return [line.replace(GLUE, " ") for line in lines]


@dataclass(frozen=True)
class Symbols:
    """The few non-ASCII characters of the output, with the ASCII a limited terminal gets instead."""

    times: str = "×"
    approx: str = "≈"
    eps: str = "ε"
    ellipsis: str = "…"

    @classmethod
    def choose(cls, unicode: bool) -> Symbols:
        return cls() if unicode else cls("x", "~", "eps", "~")


def can_encode(text: str, encoding: str | None) -> bool:
    """Whether a stream with ``encoding`` can print ``text`` (a console may be cp1252 or ASCII)."""
    try:
        text.encode(encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def format_number(value: Any) -> str:
    """A number in at most 6 significant digits; ints and booleans as they are."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, np.ndarray):
        value = value[()]
        if isinstance(value, (np.integer, np.bool_)):
            return format_number(value)
    if isinstance(value, complex):
        return str(value)
    number = float(value)
    if number == 0:
        return "0"
    return f"{number:.6g}"


def format_value(value: Any) -> str:
    """A value as explain shows it: numbers as numbers, arrays by shape and norm."""
    if isinstance(value, tuple):
        return (
            "(" + ", ".join(format_value(v) for v in value) + ("," if len(value) == 1 else "") + ")"
        )
    if np.ndim(value) == 0:
        return format_number(value)
    array = np.asarray(value)
    shape = "(" + ", ".join(map(str, array.shape)) + ("," if array.ndim == 1 else "") + ")"
    if np.issubdtype(array.dtype, np.floating):
        return f"shape {shape}, norm {format_number(np.linalg.norm(array))}"
    return f"shape {shape}, {array.dtype}"


def format_input(value: Any) -> str:
    """A parameter's value in a list of them: ``2``, or ``array(3, 2)`` by its shape."""
    if np.ndim(value) == 0:
        return format_value(value)
    return "array" + format_value(np.shape(value))


def equals(value: Any) -> str:
    """`` = 2`` after a name, or ``: shape (3,), norm 1.2`` for an array."""
    text = format_value(value)
    return f": {text}" if text.startswith("shape") else f" = {text}"


def d_name(result: str, name: str) -> str:
    """``dJ/dw``; longer names in parentheses, so ``dJ/d(d_sq)`` cannot be misread."""

    def part(n: str) -> str:
        return n if len(n) == 1 else f"({n})"

    return f"d{part(result)}/d{part(name)}"


def _glue(*words: str) -> str:
    """Words that stay on one line (``≈ 2 × ε``)."""
    return GLUE.join(words)


def _factor(value: Any) -> str:
    text = format_number(value)
    return f"({text})" if text.startswith("-") else text


def _simple(text: str) -> bool:
    return re.fullmatch(r"-?[\w.]+", text) is not None


class _Phrases:
    """The sentences both printers share; ``code`` marks code (backticks in markdown)."""

    def __init__(self, ex: Explanation, s: Symbols, code: Callable[[str], str]) -> None:
        self.ex, self.s, self.code = ex, s, code

    def at(self) -> str:
        return ", ".join(f"{p.name}={format_input(p.value)}" for p in self.ex.params)

    def named(self, name: str, value: Any) -> str:
        """``w = 2`` as code; an array's name as code, then its shape and norm as prose."""
        text = format_value(value)
        if text.startswith("shape"):
            return f"{self.code(name)}: {text}"
        return self.code(f"{name} = {text}")

    def title(self) -> str:
        ex = self.ex
        return f"{ex.function}({', '.join(p.name for p in ex.params)}) at {self.at()}"

    def summary(self) -> str:
        ex = self.ex
        return (
            f"{self.named(ex.result, ex.value)}, gradient with respect to "
            f"{', '.join(self.code(w) for w in ex.wrt)}"
        )

    def nudge_legend(self) -> str:
        s = self.s
        return (
            f"nudge: one value moved by {_glue(s.eps, '=', format_number(self.ex.epsilon))}, "
            "the forward pass run again"
        )

    def step(self, step: Step, value: bool = True) -> str:
        text = f"{step.name} = {step.expr}"
        return text + equals(step.value) if value else text

    def upstream(self, b: BackwardStep) -> str:
        gname = d_name(self.ex.result, b.step.name)
        return f"upstream {self.named(gname, b.upstream)}"

    def local(self, part: Part, step: Step) -> str | None:
        """The local derivative line, for scalar steps (arrays say it in the downstream line)."""
        if part.local is None:
            return None
        lname = d_name(step.name, part.target)
        number = format_number(part.local)
        if part.symbolic is not None and part.symbolic != number:
            text = self.code(f"{lname} = {part.symbolic} = {number}")
        else:
            text = self.code(f"{lname} = {number}")
        if part.words:
            text += f" ({part.words})"
        elif part.symbolic is None and part.vjp:
            text += f" (rule: {self.code(part.vjp)})"
        return text

    def downstream(self, part: Part) -> str:
        s = self.s
        gname = d_name(self.ex.result, part.target)
        sign = "+=" if part.count > 1 else "="
        tail = (
            f" (part {part.index} of {part.count}: {part.target} fans out)"
            if part.count > 1
            else ""
        )
        if part.local is not None:
            product = _glue(_factor(part.upstream), s.times, _factor(part.local))
            return self.code(f"{gname} {sign} {product} = {format_value(part.value)}") + tail
        words = [part.words] if part.words else []
        if part.symbolic is not None:
            local = part.symbolic if _simple(part.symbolic) else f"({part.symbolic})"
            formula = {"1": "upstream", "-1": "-upstream"}.get(part.symbolic, f"upstream * {local}")
            if part.elementwise and formula not in ("upstream", "-upstream"):
                words.append("elementwise")
        else:
            formula = part.vjp or "upstream"
        if part.summed:
            words.append("summed over the broadcast axes")
        said = "".join(f", {w}" for w in words)
        value = format_value(part.value)
        return f"{self.code(f'{gname} {sign} {formula}')}{said}: {value}{tail}"

    def total(self, total: Total) -> str | None:
        if len(total.parts) < 2:
            return None
        gname = d_name(self.ex.result, total.target)
        if all(np.ndim(p) == 0 for p in total.parts):
            added = " + ".join(_factor(p) for p in total.parts)
            return self.code(f"{gname} = {added} = {format_value(total.value)}") + (
                f" (the parts add up: {total.target} fans out to {len(total.parts)} steps)"
            )
        return f"{self.code(gname)} = the sum of its {len(total.parts)} parts: {format_value(total.value)}"

    def nudge(self, total: Total) -> str | None:
        n = total.nudge
        if n is None:
            return None
        s, code = self.s, self.code
        result, name = self.ex.result, total.target
        eps = _glue(s.eps, "=", format_number(n.epsilon))
        move = (
            f"if {code(name)} moves {eps} along its gradient"
            if n.along_gradient
            else f"if {code(name)} goes up by {eps}"
        )
        if n.change is None:
            return f"{move}, {self.ex.function} raises {n.error}"
        if n.change > 0:
            moved = f"{code(result)} goes up by {format_number(n.change)}"
        elif n.change < 0:
            moved = f"{code(result)} goes down by {format_number(-n.change)}"
        else:
            moved = f"{code(result)} does not change"
        if n.change == 0 and n.close:
            return f"{move}, {moved} ({_glue('0', s.times, s.eps)})"
        if n.close:
            predicted = _glue(s.approx, format_number(abs(n.slope)), s.times, s.eps)
            extra = f" (the norm of {code(d_name(result, name))})" if n.along_gradient else ""
            return f"{move}, {moved} {predicted}{extra}"
        return (
            f"{move}, {moved}, not {_glue(format_number(n.slope), s.times, s.eps)}: "
            f"{code(result)} has a kink here or curves sharply"
        )

    def gradient(self, name: str, value: Any) -> str:
        return self.named(d_name(self.ex.result, name), value)

    def table(self) -> tuple[list[str], list[list[str]]]:
        header = ["step", "forward value", d_name(self.ex.result, "step")]
        rows = []
        for step in self.ex.params + self.ex.steps:
            grad = "-" if step.gradient is None else format_value(step.gradient)
            rows.append([step.name, format_value(step.value), grad])
        return header, rows


def _statement_groups(steps: Sequence[Any], key: Callable[[Any], Step]) -> list[list[Any]]:
    """Consecutive items whose steps implement the same source statement."""
    groups: list[list[Any]] = []
    for item in steps:
        step = key(item)
        first = key(groups[-1][0]) if groups else None
        if first is not None and (first.line, first.statement, first.place) == (
            step.line,
            step.statement,
            step.place,
        ):
            groups[-1].append(item)
        else:
            groups.append([item])
    return groups


def _line(step: Step) -> str:
    """``line 4``, and where the step ran when it is in a loop, an if or a call:
    ``line 4 (for ck in c, pass 2 of 3)``."""
    statement = (step.statement or "").rstrip(":")
    labels = [label for _, label in step.place.levels if label != statement]
    where = f" ({', '.join(labels)})" if labels else ""  # a loop's header is not said twice
    return f"line {step.line}{where}"


def _with_totals(b: BackwardStep) -> list[tuple[Part, Total | None]]:
    """The step's parts, each with the gradient it completes (after the last part for that value)."""
    last = {part.target: i for i, part in enumerate(b.parts)}
    totals = {t.target: t for t in b.totals}
    return [
        (part, totals.get(part.target) if last[part.target] == i else None)
        for i, part in enumerate(b.parts)
    ]


def _same_text(step: Step) -> bool:
    """Whether a step is its whole statement (``c = w * x``): then the statement is not repeated."""
    if step.statement is None:
        return False
    return re.sub(r"\s", "", f"{step.name}={step.expr}") == re.sub(r"\s", "", step.statement)


_ANSI = {
    "title": "\033[1m",
    "heading": "\033[1m",
    "statement": "\033[36m",
    "gradient": "\033[32m",
    "nudge": "\033[2m",
    "warning": "\033[33m",
}
_RESET = "\033[0m"


class _TextOut:
    """Lines wrapped to a width, then colored by role (color codes take no columns)."""

    def __init__(self, width: int, color: bool) -> None:
        self.width = width
        self.color = color
        self.lines: list[str] = []

    def add(self, text: str, indent: int = 0, role: str | None = None, hang: int = 4) -> None:
        rest = " " * min(indent + hang, self.width // 2)
        wrapped = _wrap(text, self.width, " " * indent, rest, break_words=True)
        for line in wrapped:
            if self.color and role in _ANSI and line.strip():
                body = line.lstrip(" ")
                line = line[: len(line) - len(body)] + _ANSI[role] + body + _RESET
            self.lines.append(line)

    def labeled(self, label: str, text: str | None, indent: int, role: str | None = None) -> None:
        if text is not None:
            self.add(f"{label:<11} {text}", indent, role, hang=12)

    def blank(self) -> None:
        self.lines.append("")


def _fit(cells: list[str], widths: list[int], ellipsis: str) -> list[str]:
    return [
        c if len(c) <= w else c[: max(w - len(ellipsis), 0)] + ellipsis
        for c, w in zip(cells, widths)
    ]


def _column_widths(header: list[str], rows: list[list[str]], room: int) -> list[int]:
    """Each column as wide as its widest cell, narrowed from the widest down until they fit."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    while sum(widths) > room and max(widths) > 6:
        widest = widths.index(max(widths))
        widths[widest] -= 1
    return widths


def render_text(ex: Explanation, width: int = 80, color: bool = False, unicode: bool = True) -> str:
    """The explanation for a terminal: no line longer than ``width`` columns."""
    s = Symbols.choose(unicode)
    say = _Phrases(ex, s, lambda text: text)
    out = _TextOut(width, color)
    out.add(f"srcdiff explain: {say.title()}", role="title")
    out.add(say.summary())
    out.blank()

    out.add("forward pass, left to right: each step and its value", role="heading")
    labels = [f"{p.name}:" if np.ndim(p.value) else f"{p.name} =" for p in ex.params]
    label_width = min(max(map(len, labels), default=0), 20)
    for p, label in zip(ex.params, labels):
        tag = "   (--wrt)" if p.wrt else ""
        out.add(f"{label:<{label_width}} {format_value(p.value)}{tag}", 2)
    for group in _statement_groups(ex.steps, lambda st: st):
        if len(group) == 1 and _same_text(group[0]):
            out.add(f"{_line(group[0])}: {say.step(group[0])}", 2, "statement")
            continue
        out.add(f"{_line(group[0])}: {group[0].statement}", 2, "statement")
        for step in group:
            out.add(say.step(step), 4)
    out.blank()

    out.add(
        f"backward pass, right to left: downstream = upstream {s.times} local",
        role="heading",
    )
    out.add(say.nudge_legend(), 2)
    if ex.depends:
        out.add(f"{d_name(ex.result, ex.result)} = 1: the seed, where the backward pass starts", 2)
    else:
        out.add(f"{ex.result} does not depend on {', '.join(ex.wrt)}: every gradient is 0", 2)
    for group in _statement_groups(ex.backward, lambda b: b.step):
        alone = len(group) == 1 and _same_text(group[0].step)
        head = f"{_line(group[0].step)}: {group[0].step.statement}"
        if alone:
            out.add(f"{head}, {say.upstream(group[0])}", 2, "statement")
        else:
            out.add(head, 2, "statement")
        for b in group:
            indent = 4 if alone else 6
            if not alone:
                out.add(f"{say.step(b.step, value=False)}, {say.upstream(b)}", 4)
            for part, total in _with_totals(b):
                out.labeled("local", say.local(part, b.step), indent)
                if part.kink:
                    out.labeled("kink", f"policy: {part.kink}", indent)
                single = part.count == 1
                out.labeled(
                    "downstream", say.downstream(part), indent, "gradient" if single else None
                )
                if total is not None:
                    out.labeled("sum", say.total(total), indent, "gradient")
                    role = "nudge" if total.nudge is None or total.nudge.close else "warning"
                    out.labeled("nudge", say.nudge(total), indent, role)
    out.blank()

    function = ex.function
    out.add(f"gradient (what {function}_grad returns)", role="heading")
    for name, value in ex.gradients:
        out.add(say.gradient(name, value), 2, "gradient")
    out.blank()

    out.add("summary (-: no gradient flows through the value)", role="heading")
    header, rows = say.table()
    room = width - 2 - 3 * (len(header) - 1)
    widths = _column_widths(header, rows, room)

    def row(cells: list[str]) -> str:
        fitted = _fit(cells, widths, s.ellipsis)
        return "  " + " | ".join(c.ljust(w) for c, w in zip(fitted, widths)).rstrip()

    out.lines.append(_ANSI["heading"] + row(header) + _RESET if color else row(header))
    out.lines.append("  " + "-+-".join("-" * w for w in widths))
    for cells in rows:
        out.lines.append(row(cells))
    return "\n".join(line.rstrip() for line in out.lines) + "\n"


def render_markdown(ex: Explanation, width: int = 100, unicode: bool = True) -> str:
    """The explanation as markdown, for notes and docs. Prose wraps at ``width``; a table row
    stays on one line (markdown tables cannot wrap)."""
    s = Symbols.choose(unicode)

    def code(text: str) -> str:
        return f"`{text}`"

    say = _Phrases(ex, s, code)
    lines: list[str] = []

    def para(text: str, indent: int = 0, bullet: str = "") -> None:
        lead = " " * indent + bullet
        # A code span stays on one line: its spaces are glued.
        text = re.sub(r"`[^`]*`", lambda m: m[0].replace(" ", GLUE), text)
        lines.extend(_wrap(text, width, lead, " " * len(lead), break_words=False))

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    def table(header: list[str], rows: list[list[str]]) -> None:
        lines.append("| " + " | ".join(cell(h) for h in header) + " |")
        lines.append("|" + "|".join(" --- " for _ in header) + "|")
        for r in rows:
            lines.append("| " + " | ".join(cell(c) for c in r) + " |")

    lines.append(f"## {say.title()}")
    lines.append("")
    para(say.summary() + ".")
    lines.append("")
    lines.append("### Forward pass, left to right")
    lines.append("")
    rows = [
        [code(p.name), "parameter" + (" (--wrt)" if p.wrt else ""), format_value(p.value), ""]
        for p in ex.params
    ]
    for st in ex.steps:
        source = f"{_line(st)[5:]}: {code(st.statement)}" if st.statement else ""
        rows.append([code(st.name), code(st.expr or ""), format_value(st.value), source])
    table(["step", "computes", "value", "line: statement"], rows)
    lines.append("")
    lines.append("### Backward pass, right to left")
    lines.append("")
    para(
        f"Downstream = upstream {s.times} local; where a value fans out, its parts add up. "
        f"N{say.nudge_legend()[1:]}."
    )
    lines.append("")
    if ex.depends:
        para(f"{code(d_name(ex.result, ex.result) + ' = 1')}: the seed.", bullet="- ")
    else:
        para(f"{code(ex.result)} does not depend on the --wrt parameters.", bullet="- ")
    for group in _statement_groups(ex.backward, lambda b: b.step):
        first = group[0].step
        para(f"{_line(first)}: {code(first.statement or '')}", bullet="- ")
        for b in group:
            para(f"{code(say.step(b.step, value=False))}, {say.upstream(b)}", 2, "- ")
            for part, total in _with_totals(b):
                for label, text in [
                    ("local", say.local(part, b.step)),
                    ("kink policy", part.kink),
                    ("downstream", say.downstream(part)),
                ]:
                    if text is not None:
                        para(f"{label}: {text}", 4, "- ")
                if total is not None:
                    for label, text in [("sum", say.total(total)), ("nudge", say.nudge(total))]:
                        if text is not None:
                            para(f"{label}: {text}", 4, "- ")
    lines.append("")
    lines.append(f"### Gradient (what `{ex.function}_grad` returns)")
    lines.append("")
    for name, value in ex.gradients:
        para(say.gradient(name, value), bullet="- ")
    lines.append("")
    lines.append("### Summary")
    lines.append("")
    header, rows = say.table()
    table(header, [[code(r[0]), r[1], r[2]] for r in rows])
    return "\n".join(lines) + "\n"
