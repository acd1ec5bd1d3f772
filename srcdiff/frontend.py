"""Frontend: source text to an SSA ``Function``.

It parses the file, finds the function, checks that every construct is in the supported subset
and lowers the body to SSA nodes. Anything outside the subset is a ``SrcdiffError`` naming the
construct, its place (file:line:col) and, where there is one, the rewrite that works. Nothing here
runs the user's code: it only reads the syntax tree.

Example: ``c = w * x; c = c + b; return c`` lowers to::

    c = mul(w, x)
    c_1 = add(c, b)
    return c_1
"""

from __future__ import annotations

import ast
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from .arrays import ArrayLowering
from .control import ControlLowering, child_statement_text
from .desugar import returns
from .errors import SrcdiffError
from .ir import Atom, Const, Function, Node, Param, Stmt, Var, walk
from .prims import BUILTIN_FUNCTIONS, MATH_CONSTANTS, MATH_FUNCTIONS, PRIMS
from .sharing import SharedArrays, Write

SUPPORTED_SUMMARY = (
    "srcdiff supports assignments, tuple unpacking, += -= *= /=, "
    "+ - * / ** // and unary minus, int and float constants, math functions, abs, pow, max, min, "
    "comparisons, if/elif/else, conditional expressions, for loops over range() or array rows, "
    "while loops, calls to functions of the same file, and one return at the end"
)

BINOPS = {
    ast.Add: "add",
    ast.Sub: "sub",
    ast.Mult: "mul",
    ast.Div: "div",
    ast.Pow: "pow",
    ast.FloorDiv: "floordiv",
}

# Constructs that will come with later features get a specific message; the rest a generic one.
UNSUPPORTED_STATEMENTS = {
    ast.AsyncFor: ("an async for loop", None),
    ast.With: ("a with statement", None),
    ast.Try: ("a try statement", "exception handling cannot be differentiated; remove it"),
    ast.Raise: ("a raise statement", None),
    ast.Assert: ("an assert statement", "move the check out of the function being differentiated"),
    ast.Delete: ("a del statement", None),
    ast.Global: ("a global declaration", "pass the value in as a parameter"),
    ast.Nonlocal: ("a nonlocal declaration", "pass the value in as a parameter"),
    ast.FunctionDef: ("a nested function", "define helpers at top level and inline them for now"),
    ast.AsyncFunctionDef: ("a nested async function", None),
    ast.ClassDef: ("a class definition", None),
    ast.Lambda: ("a lambda", None),
    ast.Match: ("a match statement", None),
}
UNSUPPORTED_EXPRESSIONS = {
    ast.BoolOp: ("a boolean operator", "use and/or in the condition of an if or a while"),
    ast.Subscript: ("indexing", "scalar code only for now: pass the elements as parameters"),
    ast.List: ("a list", None),
    ast.Dict: ("a dict", None),
    ast.Set: ("a set", None),
    ast.ListComp: ("a list comprehension", None),
    ast.SetComp: ("a set comprehension", None),
    ast.DictComp: ("a dict comprehension", None),
    ast.GeneratorExp: ("a generator expression", "write the sum out term by term"),
    ast.Lambda: ("a lambda", None),
    ast.JoinedStr: ("an f-string", None),
    ast.Await: ("await", None),
    ast.Yield: ("yield", "generators cannot be differentiated"),
    ast.YieldFrom: ("yield from", "generators cannot be differentiated"),
    ast.NamedExpr: ("an assignment expression (:=)", "assign on a line of its own"),
    ast.Starred: ("a starred expression", "pass the values one by one"),
}


def parse(source: str, filename: str) -> ast.Module:
    """Parse, turning Python's SyntaxError into a located SrcdiffError.

    The error is taken from a second parse under a pseudo file name: given a real path, CPython
    may re-read the line from the file (a BOM included) and count its columns there.
    """
    import sys
    import warnings

    try:
        return ast.parse(source, filename=filename)  # warnings name the user's file
    except SyntaxError:
        pass
    except ValueError as e:  # e.g. a NUL byte in the source
        raise SrcdiffError(f"cannot parse the file: {e}", filename=filename) from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # shown once already
            return ast.parse(source, filename="<srcdiff>")
    except SyntaxError as e:
        col = e.offset or None
        if not col and e.lineno:
            # An int literal over the digit limit comes with offset 0: point at the literal.
            limit = getattr(sys, "get_int_max_str_digits", lambda: 0)()
            col = next(
                (
                    m.start() + 1
                    for m in re.finditer(r"(?<![\w.])\d[\d_]*", e.text or "")
                    if limit and len(m[0].replace("_", "")) > limit
                ),
                1,
            )
        raise SrcdiffError(
            f"syntax error: {e.msg}",
            filename=filename,
            line=e.lineno,
            col=col,
            source_line=e.text.rstrip("\n") if e.text else None,
            hint="srcdiff reads the file as Python source; fix the syntax and run again",
        ) from None


@dataclass
class Imports:
    """What the module's imports make ``math`` and its functions known as."""

    modules: dict[str, str] = field(default_factory=dict)  # alias -> "math"
    functions: dict[str, str] = field(default_factory=dict)  # alias -> prim name
    constants: dict[str, str] = field(default_factory=dict)  # alias -> constant prim
    numpy: set[str] = field(default_factory=set)  # aliases of the numpy module
    numpy_functions: dict[str, str] = field(default_factory=dict)  # alias -> NumPy function name

    def add(self, stmt: ast.stmt) -> None:
        if isinstance(stmt, ast.ImportFrom) and stmt.module == "numpy" and stmt.level == 0:
            for a in stmt.names:
                self.numpy_functions[a.asname or a.name] = a.name
            return
        if isinstance(stmt, ast.Import):
            for a in stmt.names:
                if a.name == "math":
                    self.modules[a.asname or "math"] = "math"
                elif a.name == "numpy":
                    self.numpy.add(a.asname or "numpy")
        elif isinstance(stmt, ast.ImportFrom) and stmt.module == "math" and stmt.level == 0:
            for a in stmt.names:
                local = a.asname or a.name
                if a.name in MATH_FUNCTIONS:
                    self.functions[local] = MATH_FUNCTIONS[a.name]
                elif a.name in MATH_CONSTANTS:
                    self.constants[local] = a.name
                elif a.name == "*":
                    self.functions.update(MATH_FUNCTIONS)
                    self.constants.update(MATH_CONSTANTS)
                else:
                    self.functions[local] = "?" + a.name  # imported, but not differentiable


def find_function(module: ast.Module, name: str | None, filename: str) -> ast.FunctionDef:
    """The top-level function to differentiate: the named one, or the only one."""
    defs = [s for s in module.body if isinstance(s, ast.FunctionDef)]
    if name is not None:
        for d in defs:
            if d.name == name:
                return d
        for s in module.body:
            if isinstance(s, ast.AsyncFunctionDef) and s.name == name:
                raise _error(s, f"'{name}' is an async function", filename, "use a plain def")
        listed = ", ".join(d.name for d in defs) or "none"
        first = defs[0] if defs else None
        raise SrcdiffError(
            f"function '{name}' not found; top-level functions in this file: {listed}",
            filename=filename,
            line=first.lineno if first else 1,
            col=first.col_offset + 1 if first else 1,
            hint=(
                "pass one of them with --function NAME"
                if defs
                else "define it with 'def' at the top level"
            ),
        )
    if not defs:
        for s in module.body:
            if isinstance(s, ast.AsyncFunctionDef):
                message = f"'{s.name}' is an async function, which srcdiff cannot differentiate"
                raise _error(s, message, filename, "use a plain def")
        raise SrcdiffError(
            "no top-level function found",
            filename=filename,
            line=1,
            col=1,
            hint="srcdiff differentiates a function defined with 'def' at the top level of the file",
        )
    if len(defs) > 1:
        listed = ", ".join(d.name for d in defs)
        raise SrcdiffError(
            f"the file defines several functions ({listed}); say which one to differentiate",
            filename=filename,
            line=defs[1].lineno,
            col=defs[1].col_offset + 1,
            hint=f"add --function {defs[0].name} (or another of them)",
        )
    return defs[0]


def load_function(
    source: str,
    filename: str = "<string>",
    function: str | None = None,
    imports: Imports | None = None,
) -> Function:
    """Parse ``source`` and lower the chosen function to SSA.

    ``imports`` adds what the caller knows the names mean (for a function object whose module
    imported math, but whose own source text does not show it).
    """
    return load_functions(source, filename, function, imports)[0]


def load_functions(
    source: str,
    filename: str = "<string>",
    function: str | None = None,
    imports: Imports | None = None,
    includes: Sequence[tuple[str, str]] = (),
) -> list[Function]:
    """The chosen function lowered to SSA, then every function it calls, directly or not, each
    once, callers before the functions they call. Recursion is an error.

    Called functions are those defined in the same file, or in the ``includes`` (pairs of source
    text and file name: ``--include helpers.py``, whose functions the file imports with
    ``from helpers import layer``).
    """
    module = parse(source, filename)
    imports = imports or Imports()
    for stmt in module.body:
        imports.add(stmt)
    files = [(source, filename, module, imports)]
    for text, name in includes:
        included = parse(text, name)
        own = Imports()
        for stmt in included.body:
            own.add(stmt)
        files.append((text, name, included, own))
    # Every function that can be called, by name: where it is defined and how to lower it.
    table: dict[str, tuple[ast.FunctionDef, tuple[str, str, ast.Module, Imports]]] = {}
    for f in files:
        for d in f[2].body:
            if not isinstance(d, ast.FunctionDef):
                continue
            if d.name in table:
                other = table[d.name][1][1]
                raise _error(
                    d,
                    f"a function '{d.name}' is also defined in {other}",
                    hint="rename one of them: a call must name one function",
                ).located(f[1], f[0])
            table[d.name] = (d, f)
    for stmt in module.body:  # from helpers import layer as dense: dense is helpers' layer
        if isinstance(stmt, ast.ImportFrom) and stmt.level == 0:
            for a in stmt.names:
                if a.asname and a.name in table:
                    table[a.asname] = table[a.name]
    defs = {name: d for name, (d, _) in table.items()}
    try:
        main = find_function(module, function, filename)
    except SrcdiffError as e:
        raise e.located(filename, source) from None
    lowered: dict[str, Function] = {}
    finished: list[str] = []  # depth-first post-order: callees before their callers

    def visit(fdef: ast.FunctionDef, where: tuple, path: list[str]) -> None:
        text, name, _, own_imports = where
        try:
            fn = Lowerer(text, name, own_imports, defs).lower(fdef)
        except SrcdiffError as e:
            raise e.located(name, text) from None
        lowered[fdef.name] = fn
        for node in walk(fn.body):
            if node.prim != "call":
                continue
            callee = node.param("function")
            if callee in path or callee == fdef.name:
                cycle = " -> ".join([*path, fdef.name, callee])
                stmt = node.stmt
                raise SrcdiffError(
                    f"recursive calls are not supported ({cycle})",
                    filename=name,
                    line=stmt.line if stmt else fdef.lineno,
                    col=stmt.col if stmt else fdef.col_offset + 1,
                    hint="srcdiff needs a fixed call structure: unroll the recursion into calls of a non-recursive helper",
                ).located(name, text)
            if callee not in lowered:
                visit(*table[callee], [*path, fdef.name])
        finished.append(fdef.name)

    visit(main, files[0], [])
    functions = [lowered[name] for name in reversed(finished)]
    if len(functions) > 1:  # the generated module is stale when any of them changes
        joined = "".join(f.source_hash for f in functions)
        functions[0].source_hash = hashlib.sha256(joined.encode()).hexdigest()[:16]
    return functions


def _error(
    node: ast.AST, message: str, filename: str | None = None, hint: str | None = None
) -> SrcdiffError:
    err = SrcdiffError(
        message,
        filename=filename,
        line=getattr(node, "lineno", None),
        col=getattr(node, "col_offset", -1) + 1 if hasattr(node, "col_offset") else None,
        hint=hint,
    )
    err.byte_col = err.col is not None
    return err


def function_hash(source: str, fdef: ast.FunctionDef) -> str:
    """A short, stable hash of the function's own source text, recorded in the generated header."""
    segment = ast.get_source_segment(source, fdef) or ast.unparse(fdef)
    return hashlib.sha256(segment.encode("utf-8")).hexdigest()[:16]


_SIMPLE_POWER = re.compile(
    r"(?<![\w.)\]])([A-Za-z_][\w.]*|\d[\w.]*) \*\* (-?[A-Za-z_][\w.]*|-?\d[\w.]*)(?![\w.(\[])"
)


def statement_text(stmt: ast.stmt) -> str:
    """The statement re-printed from its syntax tree, with ``**`` hugged as black prints it (``d**2``).

    Re-printing (never copying the source text) keeps comments in the output free of anything but
    identifiers, numbers and operators.
    """
    try:
        text = ast.unparse(stmt)
    except RecursionError:
        # ast.unparse takes three or four frames per level of the tree: an expression Python
        # compiles fine (400 nested operators) can need more than the default limit. Retry with
        # that much headroom, within a bound (deeper still is refused, located, by the caller).
        import sys

        depth, stack = 0, [(stmt, 1)]
        while stack:
            node, level = stack.pop()
            depth = max(depth, level)
            stack.extend((child, level + 1) for child in ast.iter_child_nodes(node))
        if depth > 2000:
            raise
        old = sys.getrecursionlimit()
        sys.setrecursionlimit(old + 5 * depth + 100)
        try:
            text = ast.unparse(stmt)
        finally:
            sys.setrecursionlimit(old)
    return _SIMPLE_POWER.sub(r"\1**\2", text)


def _assigned_names(fdef: ast.FunctionDef) -> set[str]:
    names = set()
    for node in ast.walk(fdef):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return names


def _numeric_constant(node: ast.expr) -> Const | None:
    """An int or float literal, possibly negated; None for anything else."""
    sign = 1
    while isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        if isinstance(node.op, ast.USub):
            sign = -sign
        node = node.operand
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return Const(sign * node.value if sign == -1 else node.value)
    return None


class Lowerer(ControlLowering, ArrayLowering, SharedArrays):
    """Walks one function body, keeping the current SSA binding of each source name."""

    def __init__(
        self,
        source: str,
        filename: str,
        imports: Imports,
        functions: dict[str, ast.FunctionDef] | None = None,
    ) -> None:
        self.source = source
        self.filename = filename
        self.imports = imports
        # The file's other top-level functions: calls to them become ``call`` nodes.
        self.functions = functions or {}
        self.env: dict[str, Atom] = {}
        self.versions: dict[str, int] = {}
        self.nodes: list[Node] = []
        self.stmt: Stmt | None = None
        self.assigned: set[str] = set()
        self.fname = ""
        self.params_vars: set[Var] = set()
        # Arrays several names share (see sharing): each value's array is that of its root in
        # ``memory``; writes into ``aliases`` are refused; a ``stale`` value was changed by a write
        # through another name; ``written`` holds the values in-place writes made.
        self.aliases: set[Var] = set()
        self.memory: dict[Var, Var] = {}
        self.stale: dict[Var, Write] = {}
        self.written: dict[Var, Write] = {}
        self.shared_outputs: set[str] = set()  # a body's outputs that share their array
        # Names assigned only inside a loop (or only in some branches of an if), with the line of
        # that loop or if: reading them after it gets a message saying so.
        self.loop_locals: dict[str, int] = {}
        self.branch_locals: dict[str, int] = {}
        # Lists (see control): a list's known contents where it was built here with [] and
        # append; the lists a loop body appends to (and what it appends); lists built by loops.
        self.list_values: dict[Var, list[Atom]] = {}
        self.collect_into: set[str] = set()
        self.collected: dict[str, Atom] = {}
        self.collected_lists: set[Var] = set()
        # A while loop's condition, printed into its header as one expression and never
        # differentiated: a conditional expression there is a select, not an if region.
        self.inline_condition = False

    # -- structure ------------------------------------------------------------------------

    def lower(self, fdef: ast.FunctionDef) -> Function:
        self.fname = fdef.name
        self.assigned = _assigned_names(fdef)
        if fdef.decorator_list:
            raise _error(
                fdef.decorator_list[0], "decorators are not supported", hint="remove the decorator"
            )
        params = self._params(fdef.args)
        body = list(fdef.body)
        first = body[0] if body else None
        if (
            isinstance(first, ast.Expr)
            and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)
        ):
            body = body[1:]  # the docstring: read, never copied into the output
        # Returns inside ifs: one result, returned once at the end (see desugar).
        body = returns(body, fdef.name, self.assigned)
        self.assigned |= _assigned_names(ast.Module(body=body, type_ignores=[]))  # type: ignore[arg-type]
        result: Atom | None = None
        result_name = fdef.name
        for i, stmt in enumerate(body):
            self.stmt = Stmt(child_statement_text(stmt), stmt.lineno, stmt.col_offset + 1)
            if isinstance(stmt, ast.Return):
                if i != len(body) - 1:
                    raise _error(
                        stmt,
                        "a return before the end of the function is not supported",
                        hint="make the return the last statement",
                    )
                if stmt.value is None:
                    raise _error(
                        stmt,
                        "the function must return a value",
                        hint="return the cost, e.g. 'return J'",
                    )
                if isinstance(stmt.value, ast.Tuple):
                    raise _error(
                        stmt.value,
                        "the function returns a tuple; srcdiff differentiates a function returning one scalar",
                        hint="return the cost alone",
                    )
                result = self.expr(stmt.value)
                if isinstance(stmt.value, ast.Name):
                    result_name = stmt.value.id
            else:
                self.statement(stmt)
        if result is None:
            raise _error(
                fdef,
                f"function '{fdef.name}' has no return statement",
                hint="end it with 'return <cost>'",
            )
        self.check_lists()
        # The function's locals: generated names must not take these (module aliases are not
        # locals, the generated module imports what it needs under names of its own).
        used = set(self.assigned) | {p.name for p in params}
        return Function(
            line=fdef.lineno,
            col=fdef.col_offset + 1,
            name=fdef.name,
            params=params,
            body=self.nodes,
            result=result,
            result_name=result_name,
            filename=self.filename,
            source_hash=function_hash(self.source, fdef),
            used_names=frozenset(used),
            numpy=self.array_mode,
        )

    def _params(self, args: ast.arguments) -> list[Param]:
        if args.vararg or args.kwarg:
            star = args.vararg or args.kwarg
            raise _error(star, "*args and **kwargs are not supported", hint="name each parameter")
        positional = args.posonlyargs + args.args
        defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults)) + list(
            args.defaults
        )
        params = []
        for i, (arg, default) in enumerate(zip(positional, defaults)):
            kind = "posonly" if i < len(args.posonlyargs) else "normal"
            params.append(self._param(arg, kind, default))
        for arg, default in zip(args.kwonlyargs, args.kw_defaults):
            params.append(self._param(arg, "kwonly", default))
        return params

    def _param(self, arg: ast.arg, kind: str, default: ast.expr | None) -> Param:
        const = None
        if default is not None:
            const = _numeric_constant(default)
            if const is None:
                raise _error(
                    default,
                    f"the default of parameter '{arg.arg}' is not a number",
                    hint="defaults must be int or float literals",
                )
        var = Var(name=arg.arg, version=0)
        self.params_vars.add(var)
        self.env[arg.arg] = var
        self.versions[arg.arg] = 0
        return Param(arg.arg, var, kind, const, line=arg.lineno, col=arg.col_offset + 1)

    # -- statements -----------------------------------------------------------------------

    def statement(self, stmt: ast.stmt) -> None:
        if isinstance(stmt, ast.Assign):
            self.assign(stmt.targets, stmt.value)
        elif isinstance(stmt, ast.AnnAssign):
            if stmt.value is None:
                return  # a bare annotation binds nothing
            self.assign([stmt.target], stmt.value)
        elif isinstance(stmt, ast.AugAssign):
            self.augassign(stmt)
        elif isinstance(stmt, ast.Pass):
            return
        elif isinstance(stmt, ast.For):
            self.for_loop(stmt)
        elif isinstance(stmt, ast.While):
            self.while_loop(stmt)
        elif isinstance(stmt, ast.If):
            self.if_statement(stmt)
        elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
            self.imports.add(stmt)
        elif isinstance(stmt, ast.Expr) and isinstance(
            stmt.value, (ast.Yield, ast.YieldFrom, ast.Await)
        ):
            what, hint = UNSUPPORTED_EXPRESSIONS[type(stmt.value)]  # a generator, named as one
            raise _error(stmt.value, f"{what} is not supported; {SUPPORTED_SUMMARY}", hint=hint)
        elif isinstance(stmt, ast.Expr) and self.list_append(stmt):
            return
        elif isinstance(stmt, ast.Expr):
            raise _error(
                stmt,
                "an expression statement has no effect on the result",
                hint="assign it to a name or remove it (calls with side effects, like print, are not supported)",
            )
        else:
            what, hint = UNSUPPORTED_STATEMENTS.get(type(stmt), (type(stmt).__name__, None))
            raise _error(stmt, f"{what} is not supported; {SUPPORTED_SUMMARY}", hint=hint)

    def assign(self, targets: list[ast.expr], value: ast.expr) -> None:
        first = targets[0]
        if isinstance(first, (ast.Tuple, ast.List)):
            if len(targets) > 1:
                raise _error(
                    first,
                    "chained tuple assignment is not supported",
                    hint="split it into two statements",
                )
            names = [self._target_name(t) for t in first.elts]
            if not isinstance(value, (ast.Tuple, ast.List)) or len(value.elts) != len(names):
                raise _error(
                    value,
                    "tuple unpacking needs a tuple of the same length on the right",
                    hint="write 'a, b = expr1, expr2' or assign each name on its own line",
                )
            atoms = [self.expr(v) for v in value.elts]  # evaluate all, then bind: swaps work
            for name, atom in zip(names, atoms):
                self.bind(name, atom)
            return
        names = [self._target_name(t) for t in targets]
        atom = self.expr(value)
        for name in names:
            atom = self.bind(name, atom)

    def _target_name(self, target: ast.expr) -> str:
        if isinstance(target, ast.Name):
            return target.id
        if isinstance(target, ast.Starred):
            raise _error(
                target, "starred assignment is not supported", hint="unpack each name explicitly"
            )
        if isinstance(target, ast.Subscript):
            raise _error(
                target,
                "assignment to an element is not supported (an in-place write)",
                hint="build a new array under a new name: np.where(mask, new, x), np.concatenate, or arithmetic",
            )
        if isinstance(target, ast.Attribute):
            raise _error(
                target, "assignment to an attribute is not supported", hint="use a local name"
            )
        raise _error(
            target, "this assignment target is not supported", hint="assign to a plain name"
        )

    def augassign(self, stmt: ast.AugAssign) -> None:
        name = self._target_name(stmt.target)
        prim = BINOPS.get(type(stmt.op))
        if prim is None:
            raise _error(
                stmt,
                f"the operator {type(stmt.op).__name__} is not supported",
                hint=SUPPORTED_SUMMARY,
            )
        left = self.lookup(name, stmt.target)
        op = {"add": "+", "sub": "-", "mul": "*", "div": "/", "pow": "**", "floordiv": "//"}[prim]
        self.refuse_foreign_write(stmt, name, op, left)
        right = self.expr(stmt.value)
        new = self.bind(name, self.emit(prim, (left, right)))
        self.wrote_in_place(stmt, name, op, left, new)

    def bind(self, name: str, atom: Atom) -> Var:
        """Make ``name`` refer to ``atom``: a fresh temporary takes the name, anything else is copied."""
        version = self.versions.get(name, -1) + 1
        self.versions[name] = version
        if isinstance(atom, Var) and not atom.is_user:
            # Temporaries never outlive their statement, so this one is free to take the name.
            atom.name, atom.version = name, version
            self.env[name] = atom
            return atom
        var = Var(name=name, version=version)
        self.nodes.append(Node(var, "copy", (atom,), self.stmt))
        self.env[name] = var
        self.share(var, atom)  # ``a = b``: both names refer to one array
        return var

    # -- expressions ----------------------------------------------------------------------

    def emit(self, prim: str, args: tuple[Atom, ...], params: tuple = ()) -> Var:
        out = Var()
        self.nodes.append(Node(out, prim, args, self.stmt, params))
        self.note_view(out, prim, args)
        return out

    def lookup(self, name: str, node: ast.AST) -> Atom:
        if self._local(name, node):
            self.check_not_stale(self.env[name], node)
            return self.env[name]
        if name in self.imports.constants:
            return self.emit(self.imports.constants[name], ())
        if name in self.imports.modules:
            raise _error(
                node,
                f"'{name}' is a module, not a value",
                hint=f"call one of its functions, e.g. {name}.exp(x)",
            )
        self._scoped_name(name, node)
        if name in self.assigned:
            raise _error(
                node,
                f"name '{name}' is used before it is assigned",
                hint=f"assign '{name}' earlier",
            )
        raise _error(
            node,
            f"name '{name}' is not defined in function '{self.fname}'",
            hint=f"srcdiff sees only the function's parameters and local names; pass '{name}' as a parameter",
        )

    def expr(self, node: ast.expr) -> Atom:
        if isinstance(node, ast.Constant):
            if type(node.value) in (int, float):
                return Const(node.value)
            kind = type(node.value).__name__
            hint = (
                "use 1.0 or 0.0"
                if isinstance(node.value, bool)
                else "only int and float constants are supported"
            )
            raise _error(node, f"a {kind} constant is not supported", hint=hint)
        if isinstance(node, ast.Name):
            return self.lookup(node.id, node)
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.UAdd):
                return self.expr(node.operand)
            if isinstance(node.op, ast.USub):
                const = _numeric_constant(node)
                if const is not None:
                    return const
                return self.emit("neg", (self.expr(node.operand),))
            raise _error(
                node,
                f"the unary operator {type(node.op).__name__} is not supported",
                hint=SUPPORTED_SUMMARY,
            )
        if isinstance(node, ast.BinOp):
            prim = BINOPS.get(type(node.op))
            if self.array_mode:
                prim = prim or {ast.MatMult: "matmul", ast.BitAnd: "and_", ast.BitOr: "or_"}.get(
                    type(node.op)
                )
            if prim is None:
                symbol = {
                    ast.Mod: "%",
                    ast.MatMult: "@",
                    ast.BitAnd: "&",
                    ast.BitOr: "|",
                    ast.BitXor: "^",
                }
                op = symbol.get(type(node.op), type(node.op).__name__)
                raise _error(node, f"the operator {op} is not supported", hint=SUPPORTED_SUMMARY)
            left = self.expr(node.left)
            right = self.expr(node.right)
            return self.emit(prim, (left, right))
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.Compare):
            return self.compare(node) if self.array_mode else self.condition(node)
        if isinstance(node, ast.List) and not node.elts:
            return self.new_list()
        if isinstance(node, ast.IfExp):
            return self.if_expression(node)
        if self.array_mode and isinstance(node, ast.Subscript):
            return self.subscript(node)
        if isinstance(node, ast.Attribute):
            if self.array_mode and not (
                isinstance(node.value, ast.Name) and node.value.id in self.imports.modules
            ):
                return self.attribute(node)
            if (
                isinstance(node.value, ast.Name)
                and node.value.id in self.imports.modules
                and not self._local(node.value.id, node.value)
            ):
                if node.attr in MATH_CONSTANTS:
                    return self.emit(node.attr, ())
                raise _error(
                    node,
                    f"math.{node.attr} is not a supported constant",
                    hint="use math.pi, math.e, math.tau or math.inf",
                )
            raise _error(
                node, "attribute access is not supported", hint="pass the value in as a parameter"
            )
        what, hint = UNSUPPORTED_EXPRESSIONS.get(type(node), (type(node).__name__, None))
        raise _error(node, f"{what} is not supported; {SUPPORTED_SUMMARY}", hint=hint)

    def call(self, node: ast.Call) -> Atom:
        name = self.numpy_name(node.func) if self.array_mode else None
        if name is not None:
            return self.numpy_call(node, name)
        func = node.func
        if (
            self.array_mode
            and isinstance(func, ast.Attribute)
            # numpy.sum(x) where the file imports numpy as np only: an unknown name, not the
            # method of an array (its argument would be read as the axis)
            and not (isinstance(func.value, ast.Name) and not self._local(func.value.id, func))
        ):
            return self.method_call(node, func.value, func.attr)
        if (
            self.array_mode
            and isinstance(func, ast.Name)
            and func.id == "len"
            and not self._local("len", func)
        ):
            if len(node.args) != 1 or node.keywords:
                raise _error(node, "len takes one argument")
            return self.emit("len", (self.expr(node.args[0]),))
        if (
            self.array_mode
            and isinstance(func, ast.Name)
            and func.id == "abs"
            and not self._local("abs", func)
        ):
            return self.emit(
                "np.abs", (self.expr(node.args[0]),)
            )  # abs of an array: the same as np.abs
        if (
            isinstance(func, ast.Name)
            and func.id in self.functions
            and func.id != self.fname
            and func.id not in self.imports.functions
            and not self._local(func.id, func)
        ):
            return self.user_call(node, self.functions[func.id])
        prim, shown = self._callee(node.func)
        if node.keywords:
            raise _error(
                node.keywords[0],
                f"keyword arguments to {shown} are not supported",
                hint="pass them by position",
            )
        for a in node.args:
            if isinstance(a, ast.Starred):
                raise _error(
                    a, "starred arguments are not supported", hint="pass the values one by one"
                )
        n = len(node.args)
        if prim == "log" and n == 2:
            prim = "logb"
        arity = PRIMS[prim].arity
        if prim in ("max", "min") and n < 2:
            raise _error(
                node,
                f"{shown} of a single iterable is not supported",
                hint=f"list the values: {shown}(a, b, ...)",
            )
        if arity is None and n < 1 or arity is not None and n != arity:
            want = "one or more" if arity is None else str(arity)
            raise _error(node, f"{shown} takes {want} argument(s) here, got {n}")
        args = tuple(self.expr(a) for a in node.args)
        return self.emit(prim, args)

    def user_call(self, node: ast.Call, fdef: ast.FunctionDef) -> Atom:
        """A call to a function of the same file: its arguments matched to its parameters (by
        position or keyword, defaults filled in), then one ``call`` node."""
        args = fdef.args
        if args.vararg or args.kwarg or args.kwonlyargs or args.posonlyargs:
            raise _error(
                node,
                f"'{fdef.name}' takes *args, **kwargs or keyword-only parameters, which calls do not support yet",
                hint="give it plain parameters",
            )
        names = [a.arg for a in args.args]
        defaults = dict(zip(names[len(names) - len(args.defaults) :], args.defaults))
        given: dict[str, ast.expr] = {}
        for a in node.args:
            if isinstance(a, ast.Starred):
                raise _error(
                    a, "starred arguments are not supported", hint="pass the values one by one"
                )
        if len(node.args) > len(names):
            raise _error(node, f"{fdef.name}() takes {len(names)} arguments, got {len(node.args)}")
        given.update(zip(names, node.args))
        for kw in node.keywords:
            if kw.arg is None or kw.arg not in names:
                raise _error(kw, f"{fdef.name}() has no parameter '{kw.arg}'")
            if kw.arg in given:
                raise _error(kw, f"{fdef.name}() got '{kw.arg}' twice")
            given[kw.arg] = kw.value
        values: list[Atom] = []
        for name in names:
            if name in given:
                values.append(self.expr(given[name]))
                continue
            default = _numeric_constant(defaults[name]) if name in defaults else None
            if default is None:
                raise _error(node, f"{fdef.name}() is missing the argument '{name}'")
            values.append(default)
        out = self.emit("call", tuple(values), (("function", fdef.name),))
        self.call_may_return_argument(out, fdef, values)
        return out

    def _local(self, name: str, node: ast.AST) -> bool:
        """Whether ``name`` is a local of the function (assigned anywhere in it, as Python decides).

        A local shadows an import of the same name for the whole function, so reading it before
        its assignment is an error, exactly as Python would raise UnboundLocalError.
        """
        if name in self.env:
            return True
        self._scoped_name(name, node)
        if name in self.assigned:
            raise _error(
                node,
                f"name '{name}' is used before it is assigned",
                hint=f"assign '{name}' earlier",
            )
        return False

    def _scoped_name(self, name: str, node: ast.AST) -> None:
        """Refuse, with the reason, a name that exists only inside a loop or some branches."""
        if name in self.loop_locals:
            raise _error(
                node,
                f"'{name}' is assigned only inside the loop at line {self.loop_locals[name]}, and srcdiff does not read loop variables after their loop",
                hint=f"assign '{name}' before the loop (it is then carried through the loop)",
            )
        if name in self.branch_locals:
            raise _error(
                node,
                f"'{name}' is assigned in only some branches of the if at line {self.branch_locals[name]}",
                hint=f"assign '{name}' before the if or in every branch",
            )

    def _callee(self, func: ast.expr) -> tuple[str, str]:
        """The primitive a call names, and the name as written (for messages)."""
        if isinstance(func, ast.Name):
            name = func.id
            if self._local(name, func):
                raise _error(func, f"'{name}' is a value, not a function")
            if name in self.imports.functions:
                prim = self.imports.functions[name]
                if prim.startswith("?"):
                    raise _error(
                        func,
                        f"math.{prim[1:]} is not differentiable or not supported",
                        hint=_math_hint(),
                    )
                return prim, name
            if name in BUILTIN_FUNCTIONS:
                return BUILTIN_FUNCTIONS[name], name
            if name == self.fname:
                raise _error(
                    func,
                    f"recursive call to '{name}' is not supported",
                    hint="srcdiff needs a fixed call structure: unroll the recursion into calls of a non-recursive helper",
                )
            if name in MATH_FUNCTIONS and not self.imports.modules and not self.imports.functions:
                raise _error(
                    func,
                    f"'{name}' is not imported",
                    hint=f"add 'from math import {name}' or use math.{name}",
                )
            raise _error(
                func,
                f"call to unknown function '{name}'",
                hint="srcdiff knows the functions of math, abs, pow, max, min, the functions of the same file, and those of files named with --include",
            )
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            owner = func.value.id
            if self._local(owner, func.value):
                raise _error(func, f"'{owner}' is a value; calling its attribute is not supported")
            if owner in self.imports.modules:
                if func.attr in MATH_FUNCTIONS:
                    return MATH_FUNCTIONS[func.attr], f"{owner}.{func.attr}"
                raise _error(
                    func,
                    f"math.{func.attr} is not differentiable or not supported",
                    hint=_math_hint(),
                )
            if owner == "math" or (owner in ("np", "numpy") and owner not in self.imports.numpy):
                module = {"math": "math", "np": "numpy as np", "numpy": "numpy"}[owner]
                hint = f"add 'import {module}' at the top of the file"
                if owner != "math" and self.imports.numpy:  # imported under another name
                    alias = sorted(self.imports.numpy)[0]
                    hint += f", or write {alias}.{func.attr} (the file imports NumPy as {alias})"
                raise _error(
                    func.value,
                    f"'{owner}' is not imported, so {owner}.{func.attr} is not defined",
                    hint=hint,
                )
            raise _error(func, f"call to unknown function '{owner}.{func.attr}'", hint=_math_hint())
        raise _error(func, "this kind of call is not supported", hint=_math_hint())


def _math_hint() -> str:
    names = sorted(k for k in MATH_FUNCTIONS)
    return "differentiable math functions: " + ", ".join(names)
