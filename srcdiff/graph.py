"""Draw the computation graph: ``srcdiff graph cost.py --wrt w,b --at w=2 b=8 x=-2 y=2 -o g.svg``.

``graph_dot`` turns a function's SSA graph (the steps ``--show-ir`` and ``srcdiff explain`` print)
into Graphviz DOT text: the parameters as sources, one node per operation, one edge per input read
(a value read twice fans out into two edges). Given an ``Explanation`` (``explain.explain``), it
computes nothing itself: each node shows the forward value the explanation recorded (blue) and the
gradient dJ/d(node) (red), and each edge carries the value that flows forward along it and the part
of the gradient sent back along it; where a value fans out, its gradient is the sum of the parts on
its out-edges. Without an explanation the graph shows the structure only, the steps through which
a gradient flows drawn solid, the others dashed.

``render`` runs the Graphviz ``dot`` program on the text (``dot -Tsvg`` / ``-Tpng``);
``cli.write_atomically`` writes the picture so readers never see half of it.
"""

from __future__ import annotations

import html
import shutil
import subprocess
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .explain import Explanation, Step, d_name, format_input, format_value
from .ir import Const, Function, GradProgram, Node, Var
from .naming import Namer
from .reverse import activity

FORWARD_COLOR = "#1f5fbf"  # forward values: blue
GRADIENT_COLOR = "#c0392b"  # gradients: red
MUTED_COLOR = "#808080"  # values no gradient flows through
INSTALL_HINT = (
    "install Graphviz (Debian/Ubuntu: apt-get install graphviz; Fedora: dnf install graphviz; "
    "macOS: brew install graphviz; Windows and others: https://graphviz.org/download/)"
)
FORMATS = {".svg": "svg", ".png": "png", ".dot": "dot", ".gv": "dot"}


@dataclass
class GraphNode:
    """One node to draw: a parameter or one SSA step."""

    id: str
    name: str
    expr: str | None  # None for a parameter
    line: int | None
    inputs: list[str] = field(default_factory=list)  # ids of the nodes it reads, in argument order
    active: bool = True
    wrt: bool = False
    result: bool = False
    step: Step | None = None  # the explanation's record, when there is one
    # The loops and ifs it is inside, outermost first: (cluster id, label) pairs.
    clusters: tuple[tuple[str, str], ...] = ()
    # A loop's carried input: the body nodes whose value it takes at the next iteration.
    next_from: list[str] = field(default_factory=list)


class GraphvizMissing(Exception):
    """The ``dot`` program is not on PATH."""


class GraphvizFailed(Exception):
    """``dot`` ran and failed."""


def graph_nodes(fn: Function, wrt: Sequence[str], ex: Explanation | None = None) -> list[GraphNode]:
    """The nodes of ``fn``'s graph, parameters first, named as ``srcdiff explain`` names them."""
    if ex is not None:
        # The explanation lists the parameters and the steps in the function's order.
        names = {p.var: s.name for p, s in zip(fn.params, ex.params)}
        names.update((n.out, s.name) for n, s in zip(fn.body, ex.steps))
        exprs = [s.expr for s in ex.steps]
        steps: list[Step | None] = [*ex.params, *ex.steps]
        active = {p.var for p, s in zip(fn.params, ex.params) if s.active}
        active |= {n.out for n, s in zip(fn.body, ex.steps) if s.active}
        # A step of a loop pass, an if's side or a call is drawn inside its cluster.
        places = {
            n.out: tuple((_cluster_id(key), label) for key, label in s.place.levels)
            for n, s in zip(fn.body, ex.steps)
        }
    else:
        names, exprs = _names_and_expressions(fn, wrt)
        steps = [None] * (len(fn.params) + len(fn.body))
        active = activity(fn, list(wrt))
        places: dict[Var, tuple[tuple[str, str], ...]] = {}
    ids: dict[Var, str] = {}
    nodes = []
    for i, p in enumerate(fn.params):
        ids[p.var] = f"p{i}"
        nodes.append(
            GraphNode(
                f"p{i}",
                names[p.var],
                None,
                None,
                active=p.var in active,
                wrt=p.name in wrt,
                step=steps[i],
            )
        )
    for i, n in enumerate(fn.body):
        ids[n.out] = f"n{i}"
        if n.prim in ("loop", "branch"):  # drawn as a cluster holding its bodies
            nodes += _region_nodes(n, f"n{i}", ids, n.out in active, (), names)
            continue
        if n.prim == "item" and n.args[0] in ids and ids[n.args[0]] in _REGION_OUTPUTS:
            source = _REGION_OUTPUTS[ids[n.args[0]]][n.param("index")]
            nodes.append(
                GraphNode(
                    f"n{i}",
                    names[n.out],
                    "after it" if source else "unchanged",
                    n.stmt.line if n.stmt else None,
                    inputs=[source] if source else [],
                    active=n.out in active,
                )
            )
            ids[n.out] = f"n{i}"
            continue
        nodes.append(
            GraphNode(
                f"n{i}",
                names[n.out],
                exprs[i],
                n.stmt.line if n.stmt else None,
                inputs=[ids[a] for a in n.args if isinstance(a, Var) and a in ids],
                active=n.out in active,
                step=steps[len(fn.params) + i],
                clusters=places.get(n.out, ()),
            )
        )
    _REGION_OUTPUTS.clear()
    result = fn.result
    if isinstance(result, Var) and result in ids:
        for node in nodes:
            node.result = node.id == ids[result]
    return nodes


def _cluster_id(key: str) -> str:
    """A DOT cluster id for an unrolled loop pass, if side or call (``u1.2`` -> ``cluster_u1_2``)."""
    return "cluster_" + key.replace(".", "_")


# Per region node drawn (by id): for each output, the id of the body node that computes it (the
# last branch's, for an if) or None. Filled by _region_nodes, read by the item nodes that follow.
_REGION_OUTPUTS: dict[str, list[str | None]] = {}


def _region_nodes(
    n: Node,
    nid: str,
    ids: dict[Var, str],
    active: bool,
    outer: tuple[tuple[str, str], ...],
    names: dict[Var, str],
) -> list[GraphNode]:
    """A loop's or an if's bodies as clusters: each body's inputs as small nodes fed by the values
    before the region, its steps inside, its results feeding the values after it."""
    region = n.param("region")
    inputs = n.args[region.head : region.head + len(region.inputs)]
    nodes: list[GraphNode] = []
    outputs: list[str | None] = [None] * len(region.outputs)
    labels = [region.text, "else:"] if region.kind == "if" else [region.text] * len(region.bodies)
    bodies = list(enumerate(region.bodies))
    if region.kind == "while":
        bodies = bodies[1:]  # the condition is the cluster's label
    for k, body in bodies:
        cid = f"cluster_{nid}_{k}"
        here = (*outer, (cid, labels[k]))
        local: dict[Var, str] = {}
        by_name = dict(zip(region.inputs, inputs))
        head = n.args[: region.head]
        if region.iterate in ("rows", "zip"):  # x_t is a row of X
            by_name.update(zip(region.targets, head))
        elif region.iterate == "enumerate":
            by_name[region.targets[1]] = head[0]
        elif region.iterate == "range":
            by_name[region.targets[0]] = head[1]  # the counter runs up to the range's stop
        for j, p in enumerate(body.params):
            pid = f"{nid}_{k}_p{j}"
            local[p.var] = pid
            names.setdefault(p.var, p.name)
            source = by_name.get(p.name)
            feed = [ids[source]] if isinstance(source, Var) and source in ids else []
            nodes.append(
                GraphNode(pid, p.name, "", None, inputs=feed, active=active, clusters=here)
            )
        for j, m in enumerate(body.body):
            mid = f"{nid}_{k}_n{j}"
            if m.out is body.result and m.prim == "pack":
                for o, a in enumerate(m.args):
                    if isinstance(a, Var) and a in local:
                        outputs[o] = local[a]
                continue
            local[m.out] = mid
            if m.prim in ("loop", "branch"):
                nodes += _region_nodes(m, mid, local, active, here, names)
                continue
            if m.prim == "item" and m.args[0] in local and local[m.args[0]] in _REGION_OUTPUTS:
                source = _REGION_OUTPUTS[local[m.args[0]]][m.param("index")]
                label = m.out.name or "value"
                nodes.append(
                    GraphNode(
                        mid,
                        label,
                        "after it",
                        m.stmt.line if m.stmt else None,
                        inputs=[source] if source else [],
                        active=active,
                        clusters=here,
                    )
                )
                continue
            nodes.append(
                GraphNode(
                    mid,
                    _body_name(m.out, j),
                    _expression(m, local, names),
                    m.stmt.line if m.stmt else None,
                    inputs=[local[a] for a in m.args if isinstance(a, Var) and a in local],
                    active=active,
                    clusters=here,
                )
            )
            names.setdefault(m.out, _body_name(m.out, j))
        if region.kind != "if":  # the values carried to the next iteration
            param_ids = {p.name: local[p.var] for p in body.params}
            for name, source in zip(region.outputs, outputs):
                target = next((m for m in nodes if m.id == param_ids.get(name)), None)
                if target is not None and source is not None:
                    target.next_from.append(source)
    _REGION_OUTPUTS[nid] = outputs
    return nodes


def _body_name(v: Var, j: int) -> str:
    if v.is_user:
        return v.name if not v.version else f"{v.name}_{v.version}"  # type: ignore[return-value]
    return f"t{j}"


def _expression(m: Node, local: dict[Var, str], names: dict[Var, str]) -> str:
    """A body step as the IR's own short form: prim(args)."""
    args = ", ".join(repr(a.value) if isinstance(a, Const) else names.get(a, "?") for a in m.args)
    return f"{m.prim}({args})"


def _names_and_expressions(fn: Function, wrt: Sequence[str]) -> tuple[dict[Var, str], list[str]]:
    """Names and expressions as ``explain`` gives them, for a graph drawn without values."""
    from .emit import Printer

    prog = GradProgram(fn, list(wrt), fn.body, [], Var(hint="d" + fn.result_name), [])
    namer = Namer(prog)
    result = fn.result
    if isinstance(result, Var) and not result.is_user and result not in {p.var for p in fn.params}:
        namer.names[result] = namer.fresh(fn.result_name)
    names = {p.var: p.name for p in fn.params}
    names.update((n.out, namer.name(n.out)) for n in fn.body)
    exprs = []
    for node in fn.body:
        try:
            text = Printer(namer, {}, {"math": "math", "numpy": "np"}).node(node)[0]
        except Exception:  # a primitive the printer does not know: the IR's own form
            args = ", ".join(repr(a.value) if isinstance(a, Const) else names[a] for a in node.args)
            text = f"{node.prim}({args})"
        exprs.append(text.replace(" ** ", "**"))
    return names, exprs


# ---- DOT text --------------------------------------------------------------------------------


def _esc(text: str) -> str:
    """Text inside an HTML-like Graphviz label: &, <, >, quotes escaped; never empty."""
    return html.escape(text, quote=True) or " "


def _font(text: str, color: str) -> str:
    return f'<FONT COLOR="{color}">{_esc(text)}</FONT>'


def _label(*rows: str) -> str:
    return "<" + "<BR/>".join(rows) + ">"


def graph_dot(fn: Function, wrt: Sequence[str], ex: Explanation | None = None) -> str:
    """The graph as DOT text; deterministic (the same input gives the same bytes)."""
    nodes = graph_nodes(fn, wrt, ex)
    by_id = {n.id: n for n in nodes}
    result = ex.result if ex is not None else fn.result_name
    out = [
        f"digraph {_quote(fn.name)} {{",
        '  rankdir=LR; fontname="Helvetica"; fontsize=12;',
        '  node [fontname="Helvetica", fontsize=11, shape=box, style="rounded"];',
        '  edge [fontname="Helvetica", fontsize=9, color="#555555"];',
    ]
    title = f"{fn.name}, gradient with respect to {', '.join(wrt)}"
    caption = [_esc(title)]
    if ex is not None:
        shown = ", ".join(f"{s.name}={format_input(s.value)}" for s in ex.params)
        caption.append(_esc(f"at {shown}: {result} = {format_value(ex.value)}"))
        caption.append(
            _font("blue: forward value", FORWARD_COLOR)
            + _esc("   ")
            + _font(f"red: gradient d{result}/d(value), sent back along each edge", GRADIENT_COLOR)
        )
    else:
        caption.append(_esc("solid: a gradient flows through it; dashed: none does"))
    out.append(f'  labelloc="t"; label={_label(*caption)};')
    # Parameters are the sources: drawn together in the first column.
    out.append("  { rank=source;")
    fan = Counter(s for n in nodes if n.active for s in n.inputs if by_id[s].active)
    for n in nodes:
        if n.expr is None:
            out.append(f"    {_node(n, result, fan[n.id])}")
    out.append("  }")
    for n in nodes:
        if n.expr is not None and not n.clusters:
            out.append(f"  {_node(n, result, fan[n.id])}")
    out += _cluster_lines([n for n in nodes if n.clusters], result, fan, depth=0)
    parts = _edge_parts(ex) if ex is not None else {}
    for n in nodes:
        sent = iter(parts.get(id(n.step), []))
        for source_id in n.inputs:
            source = by_id[source_id]
            rows = []
            if source.step is not None:
                rows.append(_font(format_value(source.step.value), FORWARD_COLOR))
            if source.active and n.active and ex is not None:
                part = next(sent, None)
                if part is not None:
                    rows.append(_font(f"\u2190 {format_value(part)}", GRADIENT_COLOR))
            attrs = [f"label={_label(*rows)}"] if rows else []
            if not (source.active and n.active):
                attrs.append('style="dashed"')
            out.append(
                f"  {source_id} -> {n.id} [{', '.join(attrs)}];"
                if attrs
                else f"  {source_id} -> {n.id};"
            )
    for n in nodes:
        for source_id in n.next_from:  # a loop's value, carried to the next iteration
            out.append(
                f'  {source_id} -> {n.id} [style="dotted", constraint=false, color="{MUTED_COLOR}", '
                f'label={_label(_font("next step", MUTED_COLOR))}];'
            )
    out.append("}")
    return "\n".join(out) + "\n"


def _cluster_lines(nodes: list[GraphNode], result: str, fan: Counter, depth: int) -> list[str]:
    """Nested ``subgraph cluster_...`` blocks for the nodes inside loops and ifs."""
    lines: list[str] = []
    order = list(dict.fromkeys(n.clusters[depth] for n in nodes if len(n.clusters) > depth))
    for cid, label in order:
        inside = [n for n in nodes if len(n.clusters) > depth and n.clusters[depth][0] == cid]
        pad = "  " * (depth + 1)
        lines.append(f"{pad}subgraph {cid} {{")
        lines.append(
            f'{pad}  label={_label(_esc(label))}; style="rounded,dashed"; color="#888888";'
        )
        for n in inside:
            if len(n.clusters) == depth + 1:
                if n.expr == "":  # a body's input
                    lines.append(
                        f"{pad}  {n.id} [label={_label(_esc(n.name))}, shape=ellipse, fontsize=9];"
                    )
                else:
                    lines.append(f"{pad}  {_node(n, result, fan[n.id])}")
        lines += _cluster_lines(inside, result, fan, depth + 1)
        lines.append(f"{pad}}}")
    return lines


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _edge_parts(ex: Explanation) -> dict[int, list[Any]]:
    """Per step (by identity): the gradient parts it sends back, in the order of its inputs."""
    return {id(b.step): [p.value for p in b.parts] for b in ex.backward}


def _node(n: GraphNode, result: str, fan: int) -> str:
    """One node's statement; ``fan``: how many edges send a part of its gradient back."""
    head = n.name if n.expr is None else f"{n.name} = {n.expr}"
    rows = [f"<B>{_esc(head)}</B>" if n.wrt else _esc(head)]
    if n.line is not None:
        rows.append(f'<FONT POINT-SIZE="9" COLOR="{MUTED_COLOR}">line {n.line}</FONT>')
    if n.step is not None:
        rows.append(_font(format_value(n.step.value), FORWARD_COLOR))
        if n.step.gradient is not None:
            text = f"{d_name(result, n.name)} = {format_value(n.step.gradient)}"
            if fan > 1:
                text += f" (sum of {fan} edges)"
            rows.append(_font(text, GRADIENT_COLOR))
    attrs = [f"label={_label(*rows)}"]
    style = ["rounded"]
    if n.expr is None:
        style.append("filled")
        attrs.append('fillcolor="#eef3fb"' if n.wrt else 'fillcolor="#f4f4f4"')
    if not n.active:
        style.append("dashed")
        attrs.append(f'color="{MUTED_COLOR}"')
    if n.wrt:
        attrs.append("penwidth=2")
    if n.result:
        attrs.append("peripheries=2")
    attrs.insert(1, f'style="{",".join(style)}"')
    return f"{n.id} [{', '.join(attrs)}];"


# ---- Rendering -------------------------------------------------------------------------------


def render(dot_text: str, fmt: str) -> bytes:
    """The picture ``dot -T<fmt>`` draws from ``dot_text`` (fmt: svg or png)."""
    program = shutil.which("dot")
    if program is None:
        raise GraphvizMissing(INSTALL_HINT)
    proc = subprocess.run(
        [program, f"-T{fmt}"],
        input=dot_text.encode("utf-8"),
        capture_output=True,
        check=False,
        timeout=120,
    )
    if proc.returncode != 0 or not proc.stdout:
        message = proc.stderr.decode("utf-8", "replace").strip()
        raise GraphvizFailed(f"dot -T{fmt} failed (exit status {proc.returncode}): {message}")
    return proc.stdout


# ---- The command -----------------------------------------------------------------------------

GRAPH_DESCRIPTION = """\
Draw the computation graph of a function: its parameters as sources, one node per operation (the
steps `srcdiff explain` shows), one edge per value read, so a value used twice fans out. With --at,
every node shows its forward value (blue) and its gradient dJ/d(node) (red), and every edge the
value flowing forward along it and the part of the gradient sent back along it (red, with an
arrow); where a value fans out, its gradient is the sum of its out-edges' parts.

The output format follows -o: .svg or .png are drawn by the Graphviz program `dot`; .dot (or .gv)
is the DOT text itself; -o - writes the DOT text to stdout. When `dot` is not installed, the DOT
text is written beside the picture asked for (graph.svg -> graph.dot), a warning on stderr says how
to install Graphviz, and the exit status is 0."""


def build_graph_parser() -> Any:
    import argparse

    p = argparse.ArgumentParser(
        prog="srcdiff graph",
        description=GRAPH_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  srcdiff graph cost.py --wrt w,b --at w=2 b=8 x=-2 y=2 -o graph.svg",
    )
    from .cli import add_function_arguments

    add_function_arguments(
        p, "values (Python literals, lists for arrays) to show forward values and gradients"
    )
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT",
        help="graph.svg, graph.png, graph.dot (or .gv), or - for DOT text on stdout",
    )
    return p


def graph_main(argv: Sequence[str]) -> int:
    import sys

    from .api import parse_wrt, read_source
    from .cli import UsageError, parse_at, write_atomically
    from .errors import SrcdiffError
    from .explain import explain
    from .frontend import load_functions
    from .reverse import check_wrt

    parser = build_graph_parser()
    args = parser.parse_args(argv)
    try:
        out = None if args.output == "-" else Path(args.output)
        if out is not None:
            if out.suffix.lower() not in FORMATS:
                raise UsageError(
                    f"-o {out}: cannot tell the format from '{out.suffix or out.name}'; "
                    "name a .svg, .png, .dot or .gv file"
                )
            if out.is_dir():
                raise UsageError(f"-o {out} is a directory; name a file")
            if not (out.parent if str(out.parent) else Path(".")).is_dir():
                raise UsageError(f"-o {out}: the directory {out.parent} does not exist")
        path = Path(args.file)
        source = read_source(path)
        if out is not None and out.resolve() == path.resolve():
            raise UsageError("the output file would overwrite the input; choose another -o")
        functions = load_functions(source, str(path), args.function)
        fn = functions[0]
        wrt = parse_wrt(args.wrt)
        if args.at:
            given = parse_at(args.at, [p.name for p in fn.params])
            ex = explain(fn, wrt, given, source=source, functions=functions)
            fn = ex.program or fn  # loops, ifs and calls unrolled at these values
        else:
            try:
                check_wrt(fn, wrt)
            except SrcdiffError as e:
                raise e.located(fn.filename, source) from None
            ex = None
        text = graph_dot(fn, wrt, ex)
    except SrcdiffError as e:
        print(e.format(), file=sys.stderr)
        return 2
    except UsageError as e:
        parser.print_usage(sys.stderr)
        print(f"srcdiff graph: error: {e}", file=sys.stderr)
        return 2
    if out is None:
        sys.stdout.write(text)
        return 0
    fmt = FORMATS[out.suffix.lower()]
    if fmt == "dot":
        write_atomically(out, text)
        print(f"srcdiff graph: wrote {out}", file=sys.stderr)
        return 0
    try:
        picture = render(text, fmt)
    except GraphvizMissing:
        dot_path = out.with_suffix(".dot")
        write_atomically(dot_path, text)
        print(
            f"srcdiff graph: warning: the Graphviz program `dot` is not installed, so {out} was "
            f"not drawn; wrote the graph as DOT text to {dot_path} instead.\n"
            f"  To draw it: {INSTALL_HINT}; then run this command again, or: "
            f"dot -T{fmt} {dot_path} -o {out}",
            file=sys.stderr,
        )
        return 0
    except (GraphvizFailed, OSError, subprocess.SubprocessError) as e:
        dot_path = out.with_suffix(".dot")
        write_atomically(dot_path, text)
        print(f"srcdiff graph: error: {e}; the DOT text is in {dot_path}", file=sys.stderr)
        return 1
    write_atomically(out, picture)
    print(f"srcdiff graph: wrote {out}", file=sys.stderr)
    return 0
