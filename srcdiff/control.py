"""Lowering of structured control flow: ``for``, ``while``, ``if`` and conditional expressions.

A loop or an if statement becomes one region node (see ``ir.Region``) whose bodies are lowered
on their own, as small functions of the names they read: the loop's carried values (names the
body assigns that exist before it), the values it only reads, and its targets. The node's
outputs, picked by ``item`` nodes, are the new values of the names it assigns. So the rest of the
pipeline sees straight-line code with a few opaque steps, and each body is differentiated by the
same passes as a whole function.

Example: ``y = 0.0; for i in range(n): y = y * x + c[i]`` lowers to::

    y = copy(0.0)
    state = loop(0, n, 1, y, x, c)     # region: for i in range(n), inputs y, x, c, outputs y
    y_2 = item(state, index=0)

with the body ``(i, y, x, c) -> pack(y_1)`` where ``y_1 = add(mul(y, x), getitem(c, i))``.
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

from .arrays import COMPARE_PRIMS
from .desugar import loop_exits
from .errors import SrcdiffError
from .ir import Atom, Const, Function, Param, Region, Stmt, Var
from .prims import PRIMS

if TYPE_CHECKING:
    from .frontend import Lowerer


def _stored_names(statements: list[ast.stmt]) -> list[str]:
    """Names the statements assign (loop targets included), in order of first assignment."""
    found: dict[str, None] = {}
    for stmt in statements:
        for node in ast.walk(stmt):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                found.setdefault(node.id)
    return list(found)


def _bound_on_every_path(statements: list[ast.stmt]) -> set[str]:
    """Names the statements bind whichever way they run: at their top level, or in both branches
    of an if; not in a loop, which may run no iteration."""
    found: set[str] = set()
    for stmt in statements:
        if isinstance(stmt, ast.If):
            found |= _bound_on_every_path(stmt.body) & _bound_on_every_path(stmt.orelse)
        elif not isinstance(stmt, (ast.For, ast.While)):
            found.update(
                n.id
                for n in ast.walk(stmt)
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
            )
    return found


def _loop_targets(statements: list[ast.stmt]) -> set[str]:
    """Names bound as the targets of for loops inside the statements (they do not outlive them)."""
    found: set[str] = set()
    for stmt in statements:
        for node in ast.walk(stmt):
            if isinstance(node, ast.For):
                found.update(n.id for n in ast.walk(node.target) if isinstance(n, ast.Name))
    return found


def _loaded_names(nodes: list[ast.AST]) -> list[str]:
    """Names the code reads, in order of first reading."""
    found: dict[str, None] = {}
    for root in nodes:
        for node in ast.walk(root):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                found.setdefault(node.id)
            elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
                found.setdefault(node.target.id)  # ``y += 1`` reads y
    return list(found)


def header_text(stmt: ast.stmt) -> str:
    """The first line of a compound statement as printed from the AST: ``for x_t in X:``."""
    if isinstance(stmt, ast.For):
        target = stmt.target
        elts = target.elts if isinstance(target, ast.Tuple) else [target]
        return f"for {', '.join(ast.unparse(e) for e in elts)} in {ast.unparse(stmt.iter)}:"
    if isinstance(stmt, ast.While):
        return f"while {ast.unparse(stmt.test)}:"
    if isinstance(stmt, ast.If):
        return f"if {ast.unparse(stmt.test)}:"
    return ast.unparse(stmt).splitlines()[0]


class ControlLowering:
    """Mixin of ``Lowerer``: regions for loops and branches."""

    def _error(self, node: ast.AST, message: str, hint: str | None = None) -> SrcdiffError:
        from .frontend import _error

        return _error(node, message, hint=hint)

    # -- conditions -------------------------------------------------------------------------

    def condition(self: Lowerer, node: ast.expr) -> Atom:  # type: ignore[misc]
        """A truth value for if/while/conditional expressions (it carries no gradient)."""
        if isinstance(node, ast.Compare):
            if len(node.ops) != 1:
                # a < b < c is a < b and b < c, with b evaluated once
                parts = []
                left = self.expr(node.left)
                for op, right_node in zip(node.ops, node.comparators):
                    right = self.expr(right_node)
                    parts.append(self._compare(op, left, right, node))
                    left = right
                return self.emit("and", tuple(parts))
            return self._compare(
                node.ops[0], self.expr(node.left), self.expr(node.comparators[0]), node
            )
        if isinstance(node, ast.BoolOp):
            prim = "and" if isinstance(node.op, ast.And) else "or"
            return self.emit(prim, tuple(self.condition(v) for v in node.values))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return self.emit("not", (self.condition(node.operand),))
        if isinstance(node, ast.Constant) and isinstance(node.value, bool):
            raise self._error(
                node,
                f"a loop or if whose condition is always {node.value} is not supported",
                "write 'while True:' only with a break inside the loop",
            )
        return self.expr(node)

    def _compare(self: Lowerer, op: ast.cmpop, left: Atom, right: Atom, node: ast.AST) -> Atom:  # type: ignore[misc]
        prim = COMPARE_PRIMS.get(type(op))
        if prim is None:
            raise self._error(
                node, "this comparison is not supported", "use <, <=, >, >=, == or !="
            )
        return self.emit(prim, (left, right))

    # -- lists ------------------------------------------------------------------------------

    def new_list(self: Lowerer) -> Atom:  # type: ignore[misc]
        """``hs = []``: a list whose contents are known while the function is read."""
        var = self.emit("new_list", ())
        self.list_values[var] = []
        return var

    def list_append(self: Lowerer, stmt: ast.Expr) -> bool:  # type: ignore[misc]
        """``hs.append(v)``: recorded, not run. Outside loops the list's contents are known (so
        ``np.stack(hs)`` stacks them); a loop collects one value per iteration."""
        call = stmt.value
        if not (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Attribute)
            and call.func.attr == "append"
            and isinstance(call.func.value, ast.Name)
        ):
            return False
        name = call.func.value.id
        if len(call.args) != 1 or call.keywords:
            raise self._error(call, "append takes one value")
        if name in self.collect_into:
            if name in self.collected:
                raise self._error(
                    stmt,
                    f"'{name}' is appended to twice in one iteration",
                    "append once per iteration (stack the values first if you need several)",
                )
            self.collected[name] = self.expr(call.args[0])
            return True
        atom = self.lookup(name, call.func.value)
        if isinstance(atom, Var) and atom in self.list_values:
            value = self.expr(call.args[0])
            self.list_values[atom].append(value)
            self.appended(atom, value)
            return True
        raise self._error(
            stmt,
            f"srcdiff cannot append to '{name}' here",
            "append to a list created with [] in the function, at the top level of a loop's "
            "body or outside loops, and pass it to np.stack",
        )

    def stacked_list(  # type: ignore[misc]
        self: Lowerer, node: ast.Call, prim: str, listed: ast.Name, keywords: dict
    ) -> Atom:
        """``np.stack(hs)`` (or np.concatenate) of a list built with append."""
        from .arrays import _static

        shown = f"np.{PRIMS[prim].symbol}"
        atom = self.lookup(listed.id, listed)
        axis = _static(keywords["axis"], f"the axis of {shown}") if "axis" in keywords else 0
        if isinstance(atom, Var) and atom in self.list_values:
            parts = self.list_values[atom]
            if not parts:
                raise self._error(listed, f"{shown} of an empty list has nothing to join")
            params = (("axis", axis),) if "axis" in keywords else ()
            return self.emit(prim, tuple(parts), params)
        if isinstance(atom, Var) and atom in self.collected_lists:
            if prim != "np.stack" or axis != 0:
                raise self._error(
                    node,
                    f"a list built in a loop can be joined with np.stack(list) only (axis 0), not {shown}",
                    f"write np.stack({listed.id})",
                )
            return self.emit("stack_list", (atom,))
        raise self._error(
            listed,
            f"{shown} needs its arrays listed in the call, or a list built with append",
            f"write the arrays out: {shown}([a, b, c]), or build the list with append",
        )

    def check_lists(self: Lowerer) -> None:  # type: ignore[misc]
        """A list a loop filled exists as a Python list only for np.stack (and len)."""
        for node in self.nodes:
            if node.prim in ("stack_list", "len"):
                continue
            for a in node.args:
                if isinstance(a, Var) and a in self.collected_lists and node.stmt is not None:
                    raise SrcdiffError(
                        f"the list '{a.name}' filled by a loop can only be passed to np.stack (or len)",
                        line=node.stmt.line,
                        col=node.stmt.col,
                        hint=f"stack it first: {a.name}_array = np.stack({a.name})",
                    )

    # -- regions ----------------------------------------------------------------------------

    def for_loop(self: Lowerer, stmt: ast.For) -> None:  # type: ignore[misc]
        if stmt.orelse:
            raise self._error(
                stmt.orelse[0], "for ... else is not supported", "move the else part after the loop"
            )
        iterate, head, targets = self._iteration(stmt)
        before, body, _ = loop_exits(stmt, self.assigned)
        for st in before:  # a break's flag
            self.statement(st)
        self._loop(stmt, "for", body, head, targets, iterate, test=None)

    def while_loop(self: Lowerer, stmt: ast.While) -> None:  # type: ignore[misc]
        if stmt.orelse:
            raise self._error(
                stmt.orelse[0],
                "while ... else is not supported",
                "move the else part after the loop",
            )
        before, body, test = loop_exits(stmt, self.assigned)
        for st in before:  # a break's flag
            self.statement(st)
        self._loop(stmt, "while", body, [], [], "", test=test)

    def _iteration(self: Lowerer, stmt: ast.For) -> tuple[str, list[Atom], list[str]]:  # type: ignore[misc]
        """What a for loop iterates over: ``range`` (start, stop, step), ``rows`` of an array,
        ``enumerate`` of an array or ``zip`` of arrays; the head atoms and the target names."""
        it, target = stmt.iter, stmt.target

        def names(t: ast.expr, count: int) -> list[str]:
            elts = t.elts if isinstance(t, (ast.Tuple, ast.List)) else [t]
            if len(elts) != count or not all(isinstance(e, ast.Name) for e in elts):
                raise self._error(
                    t,
                    f"the loop target must be {count} plain name(s) here",
                    "write e.g. 'for i, x_t in enumerate(X):'",
                )
            return [e.id for e in elts]  # type: ignore[attr-defined]

        def builtin(call: ast.expr, name: str) -> bool:
            return (
                isinstance(call, ast.Call)
                and isinstance(call.func, ast.Name)
                and call.func.id == name
                and name not in self.env
                and not call.keywords
            )

        if builtin(it, "range"):
            args = [self.expr(a) for a in it.args]  # type: ignore[attr-defined]
            if not 1 <= len(args) <= 3:
                raise self._error(it, "range takes 1 to 3 arguments")
            if len(args) == 1:
                args = [Const(0), args[0]]
            if len(args) == 2:
                args.append(Const(1))
            return "range", args, names(target, 1)
        if builtin(it, "enumerate"):
            if len(it.args) != 1:  # type: ignore[attr-defined]
                raise self._error(it, "enumerate takes one array here", "write enumerate(X)")
            return "enumerate", [self.expr(it.args[0])], names(target, 2)  # type: ignore[attr-defined]
        if builtin(it, "zip"):
            arrays = [self.expr(a) for a in it.args]  # type: ignore[attr-defined]
            if not arrays:
                raise self._error(it, "zip needs at least one array")
            return "zip", arrays, names(target, len(arrays))
        if isinstance(it, (ast.Name, ast.Attribute, ast.Subscript)) and self.array_mode:
            return "rows", [self.expr(it)], names(target, 1)
        raise self._error(
            it,
            f"srcdiff cannot iterate over {ast.unparse(it)}",
            "loop over range(...), over the rows of an array (for x_t in X), or over enumerate/zip of arrays",
        )

    def _loop(  # type: ignore[misc]
        self: Lowerer,
        stmt: ast.For | ast.While,
        kind: str,
        body: list[ast.stmt],
        head: list[Atom],
        targets: list[str],
        iterate: str,
        test: ast.expr | None,
    ) -> None:
        inner_targets = _loop_targets(body)
        stored = [n for n in _stored_names(body) if n not in inner_targets]
        appended = self._appended_lists(body)
        for name in targets:
            if name in stored:
                raise self._error(
                    stmt.target,  # type: ignore[union-attr]
                    f"the loop variable '{name}' is assigned inside the loop",
                    "use another name for the value computed in the loop",
                )
        carried = [n for n in stored if n in self.env and n not in targets]
        for name in stored:
            if name not in self.env and name not in targets:
                self.loop_locals.setdefault(name, stmt.lineno)
        readers: list[ast.AST] = list(body) + ([test] if test is not None else [])
        reads = [
            n
            for n in _loaded_names(readers)
            if n in self.env and n not in carried and n not in targets and n not in appended
        ]
        inputs = carried + reads
        region = Region(
            kind, [], inputs, carried + appended, targets, len(head), iterate, header_text(stmt)
        )
        region.collected = list(range(len(carried), len(carried) + len(appended)))
        where = self.stmt
        self.stmt = Stmt(region.text, stmt.lineno, stmt.col_offset + 1)
        if test is not None:
            region.bodies.append(self._body([test], targets, inputs, None, condition=True))
        region.bodies.append(
            self._body(body, targets, inputs, carried + appended, iterate=iterate, collect=appended)
        )
        lists = [self.env[n] for n in appended]
        self._region_node("loop", region, head, where, lists)
        for name in appended:
            self.collected_lists.add(self.env[name])  # type: ignore[arg-type]
        for name in targets:
            self.env.pop(name, None)
            self.loop_locals.setdefault(name, stmt.lineno)

    def if_statement(self: Lowerer, stmt: ast.If) -> None:  # type: ignore[misc]
        where = self.stmt
        self.stmt = Stmt(header_text(stmt), stmt.lineno, stmt.col_offset + 1)
        cond = self.condition(stmt.test)
        branches = [stmt.body, stmt.orelse]
        stored = [[n for n in _stored_names(b) if n not in _loop_targets(b)] for b in branches]
        # A name new here lives on after the if only if both branches bind it on every path
        # (one bound only in a nested loop or if of one branch is that block's own).
        everywhere = _bound_on_every_path(stmt.body) & _bound_on_every_path(stmt.orelse)
        outputs = [
            n for n in dict.fromkeys(stored[0] + stored[1]) if n in self.env or n in everywhere
        ]
        for name in dict.fromkeys(stored[0] + stored[1]):
            if name not in outputs:
                self.branch_locals.setdefault(name, stmt.lineno)
        reads = [
            n for n in _loaded_names(stmt.body + stmt.orelse) if n in self.env and n not in outputs
        ]
        inputs = [n for n in outputs if n in self.env] + reads
        region = Region("if", [], inputs, outputs, [], 1, "", header_text(stmt))
        for branch in branches:
            region.bodies.append(self._body(branch, [], inputs, outputs))
        self._region_node("branch", region, [cond], where)

    def if_expression(self: Lowerer, node: ast.IfExp) -> Atom:  # type: ignore[misc]
        """``a if c else b``: an if statement assigning one value, so only one side runs."""
        cond = self.condition(node.test)
        if self.inline_condition:  # printed as written, in a while header: Python runs one side
            return self.emit("select", (cond, self.expr(node.body), self.expr(node.orelse)))
        name = "sel"
        reads = [n for n in _loaded_names([node.body, node.orelse]) if n in self.env]
        region = Region("if", [], reads, [name], [], 1, "", f"{ast.unparse(node)}")
        for side in (node.body, node.orelse):
            region.bodies.append(self._body([side], [], reads, [name], value_of=name))
        state = self.emit("branch", (cond, *(self.env[n] for n in reads)), (("region", region),))
        item = self.emit("item", (state,), (("index", 0),))
        self.bind_output(name, item)
        return item

    def _appended_lists(self: Lowerer, body: list[ast.stmt]) -> list[str]:  # type: ignore[misc]
        """The lists a loop body appends to at its top level (each value collected per
        iteration); an append deeper inside the body to a list from outside is refused."""
        found: list[str] = []
        for stmt in body:
            nested = not (isinstance(stmt, ast.Expr))
            for node in ast.walk(stmt):
                if not (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "append"
                    and isinstance(node.func.value, ast.Name)
                ):
                    continue
                name = node.func.value.id
                atom = self.env.get(name)
                if not (isinstance(atom, Var) and atom in self.list_values):
                    continue  # a list of the body's own, or an error found when it is lowered
                if nested:
                    raise self._error(
                        node,
                        f"'{name}' is appended to inside a nested if or loop",
                        "append at the top level of the loop's body, once per iteration",
                    )
                if self.list_values[atom]:
                    raise self._error(
                        node,
                        f"'{name}' already holds values before the loop that appends to it",
                        f"start it empty ({name} = []) and put the first values in the loop",
                    )
                if name not in found:
                    found.append(name)
        return found

    def _region_node(  # type: ignore[misc]
        self: Lowerer,
        prim: str,
        region: Region,
        head: list[Atom],
        where: Stmt | None,
        lists: list[Atom] = (),  # type: ignore[assignment]
    ) -> None:
        # The lists a loop fills come last: the node keeps them alive, they are not inputs.
        args = (*head, *(self.env[n] for n in region.inputs), *lists)
        state = self.emit(prim, args, (("region", region),))
        for k, name in enumerate(region.outputs):
            self.bind_output(name, self.bind(name, self.emit("item", (state,), (("index", k),))))
        self.stmt = where

    def _body(  # type: ignore[misc]
        self: Lowerer,
        statements: list,
        targets: list[str],
        inputs: list[str],
        outputs: list[str] | None,
        *,
        condition: bool = False,
        value_of: str | None = None,
        iterate: str = "",
        collect: list[str] = (),  # type: ignore[assignment]
    ) -> Function:
        """One body lowered on its own: a function of the targets and inputs returning the
        outputs' new values (a ``pack``), or the condition's truth value."""
        child = type(self)(self.source, self.filename, self.imports, self.functions)
        child.fname = self.fname
        child.assigned = self.assigned
        child.versions = self.versions  # shared: every value of a name gets its own version
        child.loop_locals = self.loop_locals
        child.branch_locals = self.branch_locals
        child.collect_into = set(collect)
        params = []
        counters = {"range": 1, "enumerate": 1}.get(iterate, 0)  # range's i, enumerate's t
        for k, name in enumerate([*targets, *inputs]):
            version = self.versions.get(name, -1) + 1
            self.versions[name] = version
            var = Var(name=name, version=version)
            if k >= len(targets):
                self.enter_body(child, name, var)  # still a shared array: writes stay refused
            elif k >= counters:
                child.aliases.add(var)  # a row of the iterated array: writes stay refused
            child.env[name] = var
            params.append(Param(name, var))
        child.stmt = self.stmt
        if condition:
            child.inline_condition = True  # a while loop's test, printed in its header
            result: Atom = child.condition(statements[0])
        elif value_of is not None:  # a conditional expression's side
            side = child.expr(statements[0])
            self.leave_body(child, params, [value_of], [side])
            result = child.emit("pack", (side,))
        else:
            for stmt in statements:
                child.stmt = Stmt(child_statement_text(stmt), stmt.lineno, stmt.col_offset + 1)
                if isinstance(stmt, ast.Return):  # (returns in ifs were rewritten: see desugar)
                    raise self._error(
                        stmt,
                        "a return inside a loop is not supported",
                        "assign the value to a name and return it after the loop",
                    )
                if isinstance(stmt, (ast.Break, ast.Continue)):
                    word = "break" if isinstance(stmt, ast.Break) else "continue"
                    raise self._error(
                        stmt,
                        f"this {word} is not supported here",
                        f"put the {word} at the end of an if's branch in the loop's body",
                    )
                child.statement(stmt)
            values = []
            for name in outputs or []:
                if name in child.collect_into:  # the value appended in this iteration
                    values.append(child.collected[name])
                    continue
                if name not in child.env:  # assigned only inside a loop of this body
                    child._scoped_name(name, statements[-1])
                values.append(child.env[name])
            self.leave_body(child, params, outputs or [], values)
            result = child.emit("pack", tuple(values))
        return Function(
            ints=frozenset(p.var for p in params[:counters]),
            name=self.fname,
            params=params,
            body=child.nodes,
            result=result,
            result_name=self.fname,
            filename=self.filename,
            used_names=frozenset(self.assigned),
            numpy=self.array_mode,
        )


def child_statement_text(stmt: ast.stmt) -> str:
    """A body statement as its comment in the output: a compound one by its header only."""
    from .frontend import statement_text

    if isinstance(stmt, (ast.For, ast.While, ast.If)):
        return header_text(stmt)
    return statement_text(stmt)
