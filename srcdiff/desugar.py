"""Early exits rewritten into structured code before lowering: return in a branch, continue, break.

Each rewrite keeps Python's meaning and the output's structure (no gotos, no unrolling):

- ``if c: return a`` followed by more statements: the rest moves into the other branch, and every
  ``return v`` becomes an assignment of the result, returned once at the end::

      if abs(r) <= d:                  if abs(r) <= d:
          return r * r / 2       ->        huber = r * r / 2
      return d * (abs(r) - d / 2)      else:
                                           huber = d * (abs(r) - d / 2)
                                       return huber

- ``continue`` at the end of an if's branch inside a loop: the rest of the body moves into the
  other branch.
- ``break``: a flag, set where the loop would stop. A while loop tests it in its condition; a for
  loop keeps iterating but its body is skipped once the flag is down (``if running:``), so the
  backward pass sees the same iterations.

A ``return`` inside a loop, and a break or continue that is not at the end of a branch, are
located errors (see ``check_exits``).
"""

from __future__ import annotations

import ast
import copy
from collections.abc import Callable

from .errors import SrcdiffError


def _error(node: ast.AST, message: str, hint: str) -> SrcdiffError:
    from .frontend import _error as located

    return located(node, message, hint=hint)


def _walk_shallow(stmts: list[ast.stmt]):
    """The statements and nested if bodies, not the bodies of nested loops or functions."""
    for st in stmts:
        yield st
        if isinstance(st, ast.If):
            yield from _walk_shallow(st.body)
            yield from _walk_shallow(st.orelse)


def _contains(stmts: list[ast.stmt], kind: type) -> bool:
    return any(isinstance(st, kind) for st in _walk_shallow(stmts))


def _always_exits(stmts: list[ast.stmt], kind: type) -> bool:
    """Every path through the statements ends in ``kind`` (return, continue or break)."""
    if not stmts:
        return False
    last = stmts[-1]
    if isinstance(last, kind):
        return True
    if isinstance(last, ast.If):
        return _always_exits(last.body, kind) and _always_exits(last.orelse, kind)
    return False


def _split_exits(
    stmts: list[ast.stmt], kind: type, replace: Callable[[ast.stmt], list[ast.stmt]]
) -> list[ast.stmt]:
    """The statements with every exit of ``kind`` replaced (``replace``) and the code after an
    if that exits on some path moved into its branches that do not."""
    out: list[ast.stmt] = []
    for i, st in enumerate(stmts):
        if isinstance(st, kind):
            return out + replace(st)  # what follows an exit never runs
        if isinstance(st, ast.If) and _contains([st], kind):
            rest = stmts[i + 1 :]
            new = copy.copy(st)
            body = st.body if _always_exits(st.body, kind) else st.body + rest
            orelse = st.orelse if _always_exits(st.orelse, kind) else st.orelse + rest
            new.body = _split_exits(body, kind, replace) or [_pass(st)]
            new.orelse = _split_exits(orelse, kind, replace)
            return out + [new]
        out.append(st)
    return out


def _pass(where: ast.AST) -> ast.stmt:
    return ast.copy_location(ast.Pass(), where)


def _assign(name: str, value: ast.expr, where: ast.AST) -> ast.stmt:
    target = ast.copy_location(ast.Name(id=name, ctx=ast.Store()), where)
    return ast.copy_location(ast.Assign(targets=[target], value=value), where)


def returns(body: list[ast.stmt], fname: str, taken: set[str]) -> list[ast.stmt]:
    """A function body whose returns are not all one final ``return``: one result, returned once.

    The result is named like the returned variable when every return returns the same name, else
    after the function (as for ``return <expression>``)."""
    exits = [st for st in _walk_shallow(body) if isinstance(st, ast.Return)]
    if all(st in body for st in exits):
        return body  # returns at the top level only: the frontend checks there is one, at the end
    for st in body:
        for node in ast.walk(st):
            if isinstance(node, (ast.For, ast.While)) and any(
                isinstance(n, ast.Return) for n in ast.walk(node)
            ):
                ret = next(n for n in ast.walk(node) if isinstance(n, ast.Return))
                raise _error(
                    ret,
                    "a return inside a loop is not supported",
                    "set a flag and break out of the loop (or assign the value), then return after the loop",
                )
    values = [st.value for st in exits]
    names = {v.id for v in values if isinstance(v, ast.Name)}
    if len(names) == 1 and all(isinstance(v, ast.Name) for v in values):
        result = names.pop()
    else:
        result = fname if fname not in taken else fname + "_result"
    if not _always_exits(body, ast.Return):
        last = body[-1] if body else None
        raise _error(
            last or body,  # type: ignore[arg-type]
            "some path through the function does not return a value",
            "end every branch with a return, or return once at the end",
        )

    def assign(st: ast.stmt) -> list[ast.stmt]:
        value = st.value  # type: ignore[attr-defined]
        if value is None:
            raise _error(st, "the function must return a value", "return the cost, e.g. 'return J'")
        if isinstance(value, ast.Name) and value.id == result:
            return [_pass(st)]
        return [_assign(result, value, st)]

    rewritten = _split_exits(body, ast.Return, assign)
    final = exits[-1]
    load = ast.copy_location(ast.Name(id=result, ctx=ast.Load()), final)
    return rewritten + [ast.copy_location(ast.Return(value=load), final)]


def loop_exits(
    loop: ast.For | ast.While, taken: set[str]
) -> tuple[list[ast.stmt], list[ast.stmt], ast.expr | None]:
    """A loop body without continue and break: (statements before the loop, the new body, the
    new while condition or None). ``taken`` holds the names the function uses; a break flag gets
    a new one (and joins it)."""
    body = loop.body
    before: list[ast.stmt] = []
    test = loop.test if isinstance(loop, ast.While) else None
    if _contains(body, ast.Break):
        flag = "running"
        while flag in taken:
            flag += "_"
        taken.add(flag)
        one = ast.copy_location(ast.Constant(1), loop)
        zero = ast.copy_location(ast.Constant(0), loop)
        before.append(_assign(flag, one, loop))

        def stop(st: ast.stmt) -> list[ast.stmt]:
            return [_assign(flag, zero, st)]

        body = _split_exits(body, ast.Break, stop) or [_pass(loop)]
        running = ast.copy_location(ast.Name(id=flag, ctx=ast.Load()), loop)
        if isinstance(test, ast.Constant) and test.value is True:  # while True: ... break
            test = running
        elif test is not None:  # while c and running:
            test = ast.copy_location(ast.BoolOp(op=ast.And(), values=[test, running]), loop)
        else:  # for ...: if running: body
            guard = ast.copy_location(ast.If(test=running, body=body, orelse=[]), loop)
            body = [guard]
    if _contains(body, ast.Continue):
        body = _split_exits(body, ast.Continue, lambda st: []) or [_pass(loop)]
    check_exits(body)
    return before, body, test


def check_exits(body: list[ast.stmt]) -> None:
    """A break or continue the rewrites could not place (inside a nested construct they do not
    reach) is refused where it stands."""
    for st in _walk_shallow(body):
        if isinstance(st, (ast.Break, ast.Continue)):
            word = "break" if isinstance(st, ast.Break) else "continue"
            raise _error(
                st,
                f"this {word} is not supported here",
                f"put the {word} at the end of an if's branch in the loop's body",
            )
