"""Static shapes: what the user declares with ``--shapes``, and what follows from it for every value.

Generic NumPy code cannot know whether ``X @ w`` multiplies a matrix by a vector or two matrices,
so without declarations the backward pass calls shape-generic helpers (``matmul_grad_b``,
``unbroadcast``). With ``--shapes "X=(m, n), w=(n,), b=()"`` every value's shape is known before
the code runs, and the backward pass can be written the way an expert writes it: ``X.T @ dz``,
``np.outer(delta, x)``, ``dz.sum(axis=0)``.

A dimension is a name (``m``: any size, the same name the same size) or an integer. Shapes are
inferred forward through the program, backward values included; where a rule below does not
apply the shape is unknown (``None``) and the code stays generic there. Two different names
never broadcast against each other: that would need one of them to be 1, which only the
declaration can say (write ``1``).
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable, Mapping

from .errors import SrcdiffError
from .ir import Atom, Const, Function, GradProgram, Node, Var
from .prims import BROADCASTING, ELEMENTWISE_UNARY, NUMPY_REDUCTIONS, PRIMS

Dim = int | str
Shape = tuple[Dim, ...]

SHAPES_HELP = (
    'declare array shapes as keyword pairs, e.g. --shapes "X=(m, n), y=(m,), w=(n,), b=()": '
    "a dimension is a name (any size; one name, one size) or an integer, () is a scalar"
)

_SAME_SHAPE = ELEMENTWISE_UNARY | {"neg", "copy", "np.sign", "np.zeros_like", "np.ones_like"}
_MATMULS = frozenset(["matmul", "np.matmul", "np.dot"])


def parse_shapes(text: str, params: Iterable[str]) -> dict[str, Shape]:
    """``"X=(m, n), w=(n,), b=()"`` to ``{"X": ("m", "n"), "w": ("n",), "b": ()}``.

    Raises ``SrcdiffError`` (bad input, exit 2) naming what is wrong and how to write it.
    """
    params = list(params)
    try:
        call = ast.parse(f"shapes({text})", mode="eval").body
    except SyntaxError:
        raise SrcdiffError(f"--shapes {text!r} is not understood", hint=SHAPES_HELP) from None
    assert isinstance(call, ast.Call)
    if call.args:
        raise SrcdiffError(f"--shapes {text!r}: every shape needs a NAME=", hint=SHAPES_HELP)
    shapes: dict[str, Shape] = {}
    for kw in call.keywords:
        if kw.arg is None:
            raise SrcdiffError(f"--shapes {text!r}: ** is not a shape", hint=SHAPES_HELP)
        if kw.arg not in params:
            raise SrcdiffError(
                f"--shapes names '{kw.arg}', which is not a parameter (parameters: {', '.join(params)})",
                hint=SHAPES_HELP,
            )
        if kw.arg in shapes:
            raise SrcdiffError(f"--shapes names '{kw.arg}' twice", hint=SHAPES_HELP)
        value = kw.value
        elts = value.elts if isinstance(value, ast.Tuple) else None
        if elts is None:
            raise SrcdiffError(
                f"--shapes {kw.arg}={ast.unparse(value)}: a shape is a tuple such as (n,) or (m, n), () for a scalar",
                hint=SHAPES_HELP,
            )
        dims: list[Dim] = []
        for e in elts:
            if isinstance(e, ast.Name):
                dims.append(e.id)
            elif (
                isinstance(e, ast.Constant)
                and isinstance(e.value, int)
                and not isinstance(e.value, bool)
                and e.value >= 0
            ):
                dims.append(e.value)
            else:
                raise SrcdiffError(
                    f"--shapes {kw.arg}: the dimension {ast.unparse(e)} is neither a name nor a size",
                    hint=SHAPES_HELP,
                )
        shapes[kw.arg] = tuple(dims)
    return shapes


def format_shapes(shapes: dict[str, Shape]) -> str:
    """The inverse of ``parse_shapes``, as recorded in a generated module's header."""

    def one(shape: Shape) -> str:
        inner = ", ".join(str(d) for d in shape)
        return f"({inner},)" if len(shape) == 1 else f"({inner})"

    return ", ".join(f"{name}={one(s)}" for name, s in shapes.items())


def broadcast(*shapes: Shape | None) -> Shape | None:
    """NumPy's broadcasting of known shapes; None when a shape is unknown or two names meet."""
    if any(s is None for s in shapes):
        return None
    known = [s for s in shapes if s is not None]
    rank = max((len(s) for s in known), default=0)
    out: list[Dim] = []
    for i in range(rank):
        dims = {s[len(s) - rank + i] for s in known if len(s) - rank + i >= 0} - {1}
        if len(dims) > 1:
            return None
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def matmul_shape(a: Shape | None, b: Shape | None) -> Shape | None:
    """The shape of ``a @ b`` for vectors and matrices (stacks of matrices: unknown)."""
    if a is None or b is None or not 1 <= len(a) <= 2 or not 1 <= len(b) <= 2:
        return None
    inner_a = a[-1]
    inner_b = b[0] if len(b) == 1 else b[-2]
    if inner_a != inner_b:
        return None
    return a[:-1] + b[1:] if len(b) == 2 else a[:-1]


def _axes(axis: object, rank: int) -> tuple[int, ...] | None:
    axes = axis if isinstance(axis, tuple) else (axis,)
    if not all(isinstance(a, int) and -rank <= a < rank for a in axes):
        return None
    return tuple(sorted(a % rank for a in axes))


def _reduced(node: Node, x: Shape | None) -> Shape | None:
    if x is None or any(k not in ("axis", "keepdims", "method") for k, _ in node.params):
        return None
    axis, keepdims = node.param("axis"), node.param("keepdims")
    axes = tuple(range(len(x))) if axis is None else _axes(axis, len(x))
    if axes is None:
        return None
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(x))
    return tuple(d for i, d in enumerate(x) if i not in axes)


def _slice_length(dim: Dim, start: object, stop: object, step: object) -> Dim | None:
    """The length of ``[start:stop]`` of an axis of length ``dim`` (constant bounds, step 1)."""
    if step not in (None, ("c", 1)):
        return None
    bounds = []
    for b, default in ((start, 0), (stop, None)):
        if b is None:
            bounds.append(default)
        elif b[0] == "c" and isinstance(b[1], int) and not isinstance(b[1], bool):
            bounds.append(b[1])
        else:
            return None
    lo, hi = bounds
    if isinstance(dim, int):
        return len(range(dim)[slice(lo, hi)])
    # dim - lo, dim + hi, hi - lo ... as "n-1": lo and hi relative to the start or the end.
    lo_end = lo < 0  # counted from the end
    hi_end = hi is None or hi < 0
    if lo_end and hi_end:
        return (hi or 0) - lo if (hi or 0) - lo >= 0 else None
    if not lo_end and not hi_end:
        return hi - lo if hi >= lo else None
    if lo_end:  # [-k:hi] with hi from the start: depends on dim
        return None
    offset = (hi or 0) - lo
    return dim if offset == 0 else f"{dim}{offset:+d}"


def _getitem(node: Node, shape_of: dict[Var, Shape | None]) -> Shape | None:
    x = shape_of.get(node.args[0]) if isinstance(node.args[0], Var) else None
    if x is None:
        return None
    template = node.param("index")
    parts = list(template[1:]) if template[0] == "t" else [template]
    if any(p[0] == "e" for p in parts):
        return None
    out: list[Dim] = []
    advanced: list[Shape | None] = []
    advanced_at: int | None = None
    axis = 0
    for p in parts:
        if p[0] == "n":
            out.append(1)
            continue
        if axis >= len(x):
            return None
        if p[0] == "s":
            length = _slice_length(x[axis], *p[1:])
            if length is None:
                return None
            out.append(length)
        elif p[0] == "c" and isinstance(p[1], int):
            pass  # an integer drops its axis
        elif p[0] == "v":
            arg = node.args[p[1]]
            if advanced_at is None:
                advanced_at = len(out)
            elif advanced_at != len(out):  # arrays apart: NumPy moves their axes to the front
                return None
            advanced.append(shape_of.get(arg) if isinstance(arg, Var) else ())
        else:
            return None
        axis += 1
    out.extend(x[axis:])
    if advanced:
        joined = broadcast(*advanced)
        if joined is None or advanced_at is None:
            return None
        out[advanced_at:advanced_at] = list(joined)
    return tuple(out)


def infer_shapes(
    params: dict[Var, Shape | None],
    nodes: Iterable[Node],
    functions: Mapping[str, Function] | None = None,
) -> dict[Var, Shape | None]:
    """The shape of every value ``nodes`` compute (None: unknown, or not an array or number).

    ``functions`` are the functions of the file that calls may name: a call's result has the shape
    its function's result has for the arguments' shapes.

    ``shape``-like values (``X.shape``) are tracked too, as the tuple of dimensions they hold, so
    that ``m = X.shape[0]`` and ``np.arange(m)`` have known sizes.
    """
    shape_of: dict[Var, Shape | None] = dict(params)
    tuples: dict[Var, Shape] = {}  # values that are shapes: X.shape holds ("m", "n")
    sizes: dict[Var, Dim] = {}  # integer values that are sizes: m = X.shape[0]
    regions: dict[Var, list[Shape | None]] = {}  # a loop's or if's outputs' shapes

    def of(a: Atom) -> Shape | None:
        return () if isinstance(a, Const) else shape_of.get(a)

    for node in nodes:
        prim, args = node.prim, node.args
        out: Shape | None = None
        if prim in ("shape", "np.shape"):
            s = of(args[0])
            if s is not None:
                tuples[node.out] = s
        elif prim in ("size", "np.size", "ndim", "len"):
            out = ()
            s = of(args[0])
            if prim == "len" and s:
                sizes[node.out] = s[0]
        elif prim == "getitem" and isinstance(args[0], Var) and args[0] in tuples:
            index = node.param("index")
            dims = tuples[args[0]]
            if index[0] == "c" and isinstance(index[1], int) and -len(dims) <= index[1] < len(dims):
                sizes[node.out] = dims[index[1]]
                out = ()
        elif prim == "getitem":
            out = _getitem(node, shape_of)
        elif prim in _SAME_SHAPE:
            out = of(args[0])
        elif prim in BROADCASTING or PRIMS[prim].kind in ("binop", "compare") and prim != "matmul":
            out = broadcast(*(of(a) for a in args))
        elif prim == "select":
            out = broadcast(of(args[1]), of(args[2]))
        elif prim in NUMPY_REDUCTIONS:
            out = _reduced(node, of(args[0]))
        elif prim in _MATMULS:
            out = matmul_shape(of(args[0]), of(args[1]))
        elif prim == "np.outer":
            a, b = of(args[0]), of(args[1])
            if a is not None and b is not None and len(a) <= 1 and len(b) <= 1:
                out = (a[0] if a else 1, b[0] if b else 1)
        elif prim in ("transpose", "np.transpose") and not node.params:
            s = of(args[0])
            out = None if s is None else s[::-1]
        elif prim == "np.arange" and len(args) == 1:
            n = args[0]
            if isinstance(n, Const) and isinstance(n.value, int):
                out = (n.value,)
            elif isinstance(n, Var) and n in sizes:
                out = (sizes[n],)
        elif prim in ("unbroadcast", "scatter", "unslice", "matmul_grad_a"):
            out = of(args[1])  # the shape of the value the adjoint is for
        elif prim in ("scatter_add", "unslice_add"):
            out = of(args[0])  # the buffer, updated in place
        elif prim == "extremum_share":
            out = of(args[0])
        elif prim == "matmul_grad_b":
            out = of(args[2])
        elif prim == "stack_list":
            out = of(args[0])  # the list's values, stacked (see region_output_shapes)
        elif prim in ("loop", "branch"):
            regions[node.out] = region_output_shapes(node, of, functions)
        elif prim == "item" and args[0] in regions:
            out = regions[args[0]][node.param("index")]  # type: ignore[index]
        elif prim == "call" and functions and node.param("function") in functions:
            callee = functions[node.param("function")]
            inner = infer_shapes(
                {p.var: of(a) for p, a in zip(callee.params, args)}, callee.body, functions
            )
            result = callee.result
            out = () if isinstance(result, Const) else inner.get(result)
        elif prim in ("sum_to", "unreduce"):
            s = args[-1]
            if isinstance(s, Var) and s in tuples:
                out = tuples[s]
        elif prim == "np.expand_dims":
            s, axis = of(args[0]), node.param("axis")
            if s is not None and isinstance(axis, int) and -len(s) - 1 <= axis <= len(s):
                dims = list(s)
                dims.insert(axis % (len(s) + 1), 1)
                out = tuple(dims)
        shape_of[node.out] = out
    return shape_of


def region_param_shapes(node: Node, of: Callable[[Atom], Shape | None]) -> dict[str, Shape | None]:
    """The shapes of a region's body parameters (its targets, then its inputs), by name, as
    the values before the region have them. A loop's carried values are assumed to keep their
    shape (``region_output_shapes`` checks it)."""
    region = node.param("region")
    head, inputs = node.args[: region.head], node.args[region.head :]
    shapes: dict[str, Shape | None] = {}
    rows = [of(a) for a in head]
    if region.iterate == "range":
        target_shapes: list[Shape | None] = [()]
    elif region.iterate == "enumerate":
        s = rows[0]
        target_shapes = [(), s[1:] if s else None]
    else:
        target_shapes = [s[1:] if s else None for s in rows]
    for name, shape in zip(region.targets, target_shapes):
        shapes[name] = shape
    for name, a in zip(region.inputs, inputs):
        shapes[name] = of(a)
    return shapes


def region_output_shapes(
    node: Node, of: Callable[[Atom], Shape | None], functions: Mapping[str, Function] | None
) -> list[Shape | None]:
    """The shapes of a region's outputs: the same in every branch of an if, and for a loop, the
    carried values' shapes when an iteration keeps them (otherwise they stay unknown)."""
    region = node.param("region")
    shapes = region_param_shapes(node, of)
    for _ in range(2):
        found = []
        for body in region.bodies[1:] if region.kind == "while" else region.bodies:
            inner = infer_shapes(
                {p.var: shapes.get(p.name) for p in body.params}, body.body, functions
            )
            pack = next(n for n in body.body if n.out is body.result)
            found.append(
                [() if isinstance(a, Const) else inner.get(a) for a in pack.args]  # type: ignore[arg-type]
            )
        outs = [s if all(f[k] == s for f in found) else None for k, s in enumerate(found[0])]
        if region.kind == "if":
            return outs
        # A list the loop fills holds one value per iteration: stacked, (iterations, *value).
        rows = of(node.args[0]) if region.iterate in ("rows", "enumerate", "zip") else None
        stacked = {
            k: (rows[0], *outs[k]) if rows and outs[k] is not None else None
            for k in region.collected
        }
        changed = False
        for name, out in zip(region.outputs, outs):
            if out != shapes.get(name) and shapes.get(name) is not None:
                shapes[name] = None  # the shape changes from one iteration to the next
                changed = True
        if not changed:
            return [
                stacked[k] if k in stacked else shapes.get(name)
                for k, name in enumerate(region.outputs)
            ]
    return [None] * len(region.outputs)


def program_shapes(prog: GradProgram) -> dict[Var, Shape | None]:
    """The shape of every value of a program whose parameters' shapes were declared."""
    declared = prog.shapes or {}
    params = {p.var: declared.get(p.name) for p in prog.function.params}
    forward = infer_shapes(params, prog.forward, prog.functions)
    result = prog.function.result
    # The seed has the result's shape (a scalar for a scalar cost).
    params[prog.seed] = () if isinstance(result, Const) else forward.get(result)  # type: ignore[arg-type]
    if prog.seeds is not None:  # a region body's seeds have the shapes of the values it returns
        pack = next(n for n in prog.forward if n.out is result)
        for seed, a in zip(prog.seeds, pack.args):
            params[seed] = () if isinstance(a, Const) else forward.get(a)
    return infer_shapes(params, [*prog.forward, *prog.backward], prog.functions)


def unify_call_sites(fn: Function, sites: list[list[Shape | None]]) -> dict[str, Shape] | None:
    """Shapes for a called function that hold at every call site: its arguments there must have
    the same ranks, the same dimensions equal to each other, and the same sizes where a size is a
    number. The first site's names then stand for the dimensions (``x=(d,), W=(h, d)``).
    None when a shape is unknown or the sites differ."""
    if not sites or any(s is None for site in sites for s in site):
        return None
    first = sites[0]
    ranks = [len(s) for s in first]  # type: ignore[arg-type]
    positions = [(i, axis) for i, rank in enumerate(ranks) for axis in range(rank)]
    for site in sites[1:]:
        if [len(s) for s in site] != ranks:  # type: ignore[arg-type]
            return None
        dims = [site[i][axis] for i, axis in positions]  # type: ignore[index]
        reference = [first[i][axis] for i, axis in positions]  # type: ignore[index]
        for a, (da, ra) in enumerate(zip(dims, reference)):
            if (isinstance(da, int) or isinstance(ra, int)) and da != ra:
                return None
            for b in range(a):
                if (dims[b] == da) != (reference[b] == ra):
                    return None
    return {p.name: first[i] for i, p in enumerate(fn.params)}  # type: ignore[misc]
