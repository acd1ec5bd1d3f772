"""The readable text form of the IR, for ``--show-ir`` and golden tests.

Each line is one SSA node, ``out = prim(args)``, with the source statement it came from; names come
from the same ``Namer`` as the generated code, so the IR and the output can be read side by side.
"""

from __future__ import annotations

from .ir import Atom, Const, GradProgram, Node
from .naming import Namer


def format_program(prog: GradProgram) -> str:
    """The forward SSA graph, the backward graph and the tape, as text."""
    namer = Namer(prog)

    def atom(a: Atom) -> str:
        return repr(a.value) if isinstance(a, Const) else namer.name(a)

    def node(n: Node) -> str:
        line = f"    {namer.name(n.out)} = {n.prim}({', '.join(atom(a) for a in n.args)})"
        return line if n.stmt is None else f"{line:<40}  # line {n.stmt.line}: {n.stmt.text}"

    fn = prog.function
    lines = [f"forward {fn.name}({', '.join(p.name for p in fn.params)}):"]
    lines += [node(n) for n in prog.forward]
    lines.append(f"    return {atom(fn.result)}")
    lines.append(
        f"backward (upstream gradient {namer.name(prog.seed)}), --wrt {','.join(prog.wrt)}:"
    )
    lines += [node(n) for n in prog.backward]
    lines.append(f"    return {', '.join(atom(g) for g in prog.grads)}")
    lines.append(f"tape: {', '.join(namer.name(v) for v in prog.tape) or '(empty)'}")
    return "\n".join(lines) + "\n"
