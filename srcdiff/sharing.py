"""Which names share one NumPy array, so that an in-place write changes nothing srcdiff misses.

In NumPy ``a += v`` writes into the array ``a`` refers to, while the SSA form computes a new value
(``a_1 = a + v``). The two agree while nothing else sees the old array. Two kinds of sharing
break that, and the frontend refuses each with the write's place:

- the caller's array: a parameter, another name of one (``a = x``) or a view of one (``x[1:]``,
  ``x.T``, ``x.reshape(...)``, ``x[None, :]``, a row of ``for x_t in X``): the write would change
  the caller's array. Refused at the write.
- a local array another name shares (``a = z``, ``a = z[1:]``, ``hs.append(z)``): the write
  changes the other name's value too. Fine while that name is never read again
  (``a = z[1:]; a += 1; return np.sum(a)``); a later read is refused, pointing at the write.

Example::

    z = x * 2
    a = z          # a and z: one array
    z += x         # a changes too: a is now stale
    return np.sum(a)   # error at 'z += ...': 'a' is read after the write

Arrays are tracked by SSA value: ``memory`` maps a value to the value that first held its array
(its root). Views whose index or shape srcdiff cannot see through (``x[i]`` may be a row or a
scalar, ``x[idx]`` a copy) count as views: refusing is safe, a differing result is not. Where
srcdiff cannot follow the sharing (across a loop's or an if's boundary, through a helper that may
return its argument) the values go into ``aliases``: writes into them are refused outright.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .errors import SrcdiffError, at_node
from .ir import Atom, Param, Stmt, Var

if TYPE_CHECKING:
    from .frontend import Lowerer

# Primitives whose result may be a view of (or the same array as) their first argument.
VIEW_PRIMS = frozenset(
    {"getitem", "transpose", "np.transpose", "reshape", "np.reshape", "np.expand_dims",
     "np.squeeze", "copy"}
)  # fmt: skip
# Methods and NumPy functions a helper may return a view of its argument with.
_VIEW_METHODS = frozenset({"reshape", "ravel", "transpose", "squeeze", "swapaxes", "view"})
_VIEW_FUNCTIONS = _VIEW_METHODS | {"expand_dims", "asarray", "broadcast_to", "moveaxis"}


@dataclass(frozen=True)
class Write:
    """An in-place write that changed the array another name still refers to."""

    node: ast.AST  # the ``a op= ...`` statement
    name: str  # the name written through
    op: str  # its operator: "+", "*"...
    other: str  # the name whose array changed with it


_error = at_node  # an error at a syntax tree node


def rewrite_hint(name: str, op: str) -> str:
    return f"write '{name} = {name} {op} ...' (a new array under the same name)"


def stale_error(write: Write, where: str) -> SrcdiffError:
    """The write, refused because the name it also changed is read afterwards (``where``)."""
    return _error(
        write.node,
        f"'{write.name} {write.op}= ...' is an in-place write into the array '{write.other}' also "
        f"refers to, and '{write.other}' is read {where}; srcdiff does not support in-place "
        "writes into shared arrays",
        hint=rewrite_hint(write.name, write.op),
    )


class SharedArrays:
    """Mixin of ``Lowerer``: which values share an array, and the in-place writes that may not
    run because of it."""

    # -- what shares what ---------------------------------------------------------------------

    def array_root(self: Lowerer, var: Var) -> Var:  # type: ignore[misc]
        root = var
        while root in self.memory:
            root = self.memory[root]
        return root

    def share(self: Lowerer, var: Var, atom: Atom) -> None:  # type: ignore[misc]
        """``var`` refers to the array of ``atom`` (or to a view of it)."""
        if not isinstance(atom, Var):
            return
        mine, theirs = self.array_root(var), self.array_root(atom)
        if mine is theirs:
            return
        if self.foreign(mine):
            self.aliases.add(theirs)  # the joined array is still (partly) the caller's
        self.memory[mine] = theirs

    def note_view(self: Lowerer, out: Var, prim: str, args: tuple[Atom, ...]) -> None:  # type: ignore[misc]
        if self.array_mode and prim in VIEW_PRIMS and args:
            self.share(out, args[0])

    def foreign(self: Lowerer, var: Var) -> bool:  # type: ignore[misc]
        """Whether ``var``'s array may be one srcdiff cannot follow: the caller's, or shared
        across a boundary."""
        root = self.array_root(var)
        return var in self.aliases or root in self.aliases or root in self.params_vars

    def sharers(self: Lowerer, var: Var, name: str) -> list[str]:  # type: ignore[misc]
        """The other names that refer to ``var``'s array now."""
        root = self.array_root(var)
        return [
            other
            for other, atom in self.env.items()
            if other != name and isinstance(atom, Var) and self.array_root(atom) is root
        ]

    def call_may_return_argument(  # type: ignore[misc]
        self: Lowerer, out: Var, fdef: ast.FunctionDef, args: list[Atom]
    ) -> None:
        """A helper that may return (a view of) an argument: its result and the arguments are
        shared in a way the caller cannot follow, so writes into any of them are refused."""
        if not (self.array_mode and returns_an_argument(fdef, self.functions)):
            return
        self.aliases.add(out)
        self.aliases.update(self.array_root(a) for a in args if isinstance(a, Var))

    # -- in-place writes ----------------------------------------------------------------------

    def refuse_foreign_write(  # type: ignore[misc]
        self: Lowerer, stmt: ast.AugAssign, name: str, op: str, left: Atom
    ) -> None:
        if not (self.array_mode and isinstance(left, Var) and self.foreign(left)):
            return
        # On a NumPy array ``x += v`` writes into the caller's array (or into the array the name
        # aliases); the generated code would compute a new one. Say so rather than differ.
        # (The fuzzer keeps a refusal's first 100 characters: "in-place" comes early.)
        root = self.array_root(left)
        if root in self.params_vars and root.name == name:
            message = f"'{name} {op}= ...' writes into an array the function did not create"
        elif root in self.params_vars:
            message = (
                f"'{name} {op}= ...' is an in-place write into the parameter '{root.name}' "
                f"('{name}' is a view or another name of it)"
            )
        else:
            message = (
                f"'{name} {op}= ...' is an in-place write into an array other names may share "
                "across a loop, an if or a call, where srcdiff cannot follow them"
            )
        raise _error(
            stmt,
            f"{message}; srcdiff does not support in-place writes yet",
            hint=rewrite_hint(name, op),
        )

    def wrote_in_place(  # type: ignore[misc]
        self: Lowerer, stmt: ast.AugAssign, name: str, op: str, left: Atom, new: Var
    ) -> None:
        """After ``name op= ...``: the new value is still the old array, and every other name
        that refers to it now holds a value srcdiff did not compute (reading it is refused)."""
        if not (self.array_mode and isinstance(left, Var)):
            return
        self.share(new, left)
        self.written[new] = Write(stmt, name, op, name)
        for other in self.sharers(new, name):
            self.stale[self.env[other]] = Write(stmt, name, op, other)  # type: ignore[index]

    def check_not_stale(self: Lowerer, atom: Atom, node: ast.AST) -> None:  # type: ignore[misc]
        write = self.stale.get(atom) if isinstance(atom, Var) else None
        if write is not None:
            raise stale_error(write, f"afterwards (line {getattr(node, 'lineno', '?')})")

    def appended(self: Lowerer, listed: Var, atom: Atom) -> None:  # type: ignore[misc]
        """``hs.append(a)`` outside loops: the list holds a's array, not a copy of it."""
        if self.array_mode:
            self.share(listed, atom)

    # -- loop and if bodies -------------------------------------------------------------------

    def enter_body(  # type: ignore[misc]
        self: Lowerer, child: Lowerer, name: str, var: Var
    ) -> None:
        """The body's own value ``var`` of the outer ``name``: a shared array stays refused
        inside, where srcdiff cannot follow what the outer names see."""
        outer = self.env.get(name)
        if not isinstance(outer, Var):
            return
        write = self.stale.get(outer)
        if write is not None:
            raise stale_error(write, f"by the block at line {self._block_line()}")
        if self.array_root(outer) in self.params_vars:
            child.params_vars.add(var)  # still the caller's array
        elif self.foreign(outer) or self.sharers(outer, name):
            child.aliases.add(var)

    def leave_body(  # type: ignore[misc]
        self: Lowerer, child: Lowerer, params: list[Param], names: list[str], values: list[Atom]
    ) -> None:
        """After a body: a write that changed an array from outside it (or one it passes on, or
        one a loop appended to a list) is refused; an output that shares its array with another
        name is marked for ``bind_output``, and the outer arrays it shares become refused too."""
        inputs = {p.var: p.name for p in params}
        where = f"outside the block at line {self._block_line()} (or by its next iteration)"
        for var, write in child.written.items():
            root = child.array_root(var)
            if inputs.get(root, write.name) != write.name:  # through a view of another input
                raise stale_error(replace(write, other=inputs[root]), where)
        for atom in values:
            write = child.stale.get(atom) if isinstance(atom, Var) else None
            if write is not None:
                raise stale_error(write, where)
        appended = {child.array_root(a) for a in child.collected.values() if isinstance(a, Var)}
        for var, write in child.written.items():
            if child.array_root(var) in appended:
                raise _error(
                    write.node,
                    f"'{write.name} {write.op}= ...' is an in-place write into an array the loop "
                    "appends to a list, so the list would hold one array many times; srcdiff "
                    "does not support in-place writes into appended arrays",
                    hint=rewrite_hint(write.name, write.op),
                )
        roots = [child.array_root(a) if isinstance(a, Var) else None for a in values]
        for k, (name, atom) in enumerate(zip(names, values)):
            if not isinstance(atom, Var):
                continue
            root = roots[k]
            if (
                child.foreign(atom)
                or child.sharers(atom, name)
                or inputs.get(root, name) != name  # type: ignore[arg-type]
                or roots.count(root) > 1  # another output (or an appended value) shares it
            ):
                self.shared_outputs.add(name)
                outer = self.env.get(inputs.get(root, ""))  # type: ignore[arg-type]
                if isinstance(outer, Var):
                    self.aliases.add(self.array_root(outer))

    def bind_output(self: Lowerer, name: str, var: Var) -> None:  # type: ignore[misc]
        if name in self.shared_outputs:
            self.shared_outputs.discard(name)
            self.aliases.add(var)

    def _block_line(self: Lowerer) -> int | str:  # type: ignore[misc]
        return self.stmt.line if isinstance(self.stmt, Stmt) else "?"


# -- helpers that may return their argument ---------------------------------------------------


def returns_an_argument(fdef: ast.FunctionDef, functions: dict[str, ast.FunctionDef]) -> bool:
    """Whether the helper may return one of its arguments' arrays, itself or a view of it
    (``return x``, ``y = x.T; return y``); read from its syntax, so a guess on the safe side."""
    args = fdef.args
    names = {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]}
    pairs = [pair for node in ast.walk(fdef) for pair in _bound_pairs(node)]
    grown = True
    while grown:  # names bound to (views of) names already found, until none are added
        new = {t for t, value in pairs if t not in names and _may_view(value, names, functions)}
        names |= new
        grown = bool(new)
    return any(
        isinstance(node, ast.Return)
        and node.value is not None
        and _may_view(node.value, names, functions)
        for node in ast.walk(fdef)
    )


def _bound_pairs(node: ast.AST) -> list[tuple[str, ast.expr]]:
    """``(name, value)`` for each name an assignment binds (a tuple target: each name to the
    matching value, or to the whole value when they do not match one to one)."""
    if isinstance(node, ast.Assign):
        targets, value = node.targets, node.value
    elif isinstance(node, ast.AnnAssign) and node.value is not None:
        targets, value = [node.target], node.value
    else:
        return []
    pairs = []
    for target in targets:
        if isinstance(target, ast.Name):
            pairs.append((target.id, value))
        elif isinstance(target, (ast.Tuple, ast.List)):
            parts = value.elts if isinstance(value, (ast.Tuple, ast.List)) else None
            for k, elt in enumerate(target.elts):
                if isinstance(elt, ast.Name):
                    one = (
                        parts[k] if parts is not None and len(parts) == len(target.elts) else value
                    )
                    pairs.append((elt.id, one))
    return pairs


def _may_view(node: ast.expr, names: set[str], functions: dict[str, ast.FunctionDef]) -> bool:
    """Whether the expression may be (a view of) the array of one of ``names``."""
    if isinstance(node, ast.Name):
        return node.id in names
    if isinstance(node, ast.Subscript):
        return _may_view(node.value, names, functions)
    if isinstance(node, ast.Attribute):
        return node.attr == "T" and _may_view(node.value, names, functions)
    if isinstance(node, ast.IfExp):
        return _may_view(node.body, names, functions) or _may_view(node.orelse, names, functions)
    if not isinstance(node, ast.Call):
        return False  # arithmetic, comparisons, constants: new values
    func = node.func
    given = [*node.args, *(kw.value for kw in node.keywords)]
    if isinstance(func, ast.Name) and func.id in functions:  # another helper: any argument
        return any(_may_view(a, names, functions) for a in given)
    if isinstance(func, ast.Attribute):
        if func.attr in _VIEW_METHODS and _may_view(func.value, names, functions):
            return True  # x.reshape(...)
        if func.attr in _VIEW_FUNCTIONS and node.args:  # np.reshape(x, ...)
            return _may_view(node.args[0], names, functions)
    return False
