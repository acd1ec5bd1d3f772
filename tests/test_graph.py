"""``srcdiff graph``: the computation graph as DOT text, drawn by Graphviz when it is installed."""

from __future__ import annotations

import os
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from helpers import COST, run_srcdiff

from srcdiff.explain import explain
from srcdiff.frontend import load_function
from srcdiff.graph import GraphNode, _node, graph_dot, graph_nodes

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "generated_examples" / "linear_cost.py"
AT = ["w=2", "b=8", "x=-2", "y=2"]
VALUES = {"w": 2, "b": 8, "x": -2, "y": 2}
HAS_DOT = shutil.which("dot") is not None
# What each node shows at w=2 b=8 x=-2 y=2: name, forward value, gradient (None: none flows).
EXPECTED = {
    "w": ("2", "dJ/dw = -4"),
    "b": ("8", "dJ/db = 2"),
    "x": ("-2", None),
    "y": ("2", None),
    "c": ("-4", "dJ/dc = 2"),
    "a": ("4", "dJ/da = 2"),
    "d": ("2", "dJ/dd = 2"),
    "d_sq": ("4", "dJ/d(d_sq) = 0.5"),
    "J": ("2", "dJ/dJ = 1"),
}


def example_dot(at: bool = True) -> str:
    source = EXAMPLE.read_text()
    fn = load_function(source, str(EXAMPLE))
    ex = explain(fn, ["w", "b"], VALUES, source=source) if at else None
    return graph_dot(fn, ["w", "b"], ex)


def node_labels(dot: str) -> dict[str, list[str]]:
    """Per node statement: the label's rows, tags stripped and entities decoded."""
    import html

    labels = {}
    for match in re.finditer(r"^\s*(\w+) \[label=<(.*?)>, style=", dot, re.MULTILINE):
        rows = [html.unescape(re.sub(r"<[^>]+>", "", r)) for r in match[2].split("<BR/>")]
        labels[match[1]] = rows
    return labels


def check_nodes(rows_by_node: dict[str, list[str]]) -> None:
    by_name = {rows[0].split(" = ")[0]: rows for rows in rows_by_node.values()}
    assert set(by_name) == set(EXPECTED)
    for name, (value, gradient) in EXPECTED.items():
        rows = by_name[name]
        assert value in rows, (name, rows)
        if gradient is None:
            assert not any(r.startswith("dJ/") for r in rows), (name, rows)
        else:
            assert gradient in rows, (name, rows)


def test_dot_for_the_worked_example():
    dot = example_dot()
    assert dot.startswith('digraph "cost" {') and dot.endswith("}\n")
    labels = node_labels(dot)
    check_nodes(labels)
    assert labels["n0"][0] == "c = w * x" and labels["n4"][0] == "J = d_sq / 2"
    # Edges: parameters are sources; each carries its value forward and its gradient part back.
    assert re.search(r"p0 -> n0 \[label=<.*>2</FONT>.*>← -4</FONT>>\];", dot)
    assert re.search(r'p2 -> n0 \[label=<.*>-2</FONT>>, style="dashed"\];', dot)
    assert "p1 -> n1" in dot and "n3 -> n4" in dot
    assert "peripheries=2" in dot.split("n4 [")[1].split("\n")[0]  # the result
    assert "blue: forward value" in dot and "red: gradient dJ/d(value)" in dot


def test_dot_is_deterministic_and_shows_structure_without_values():
    assert example_dot() == example_dot()
    dot = example_dot(at=False)
    rows = node_labels(dot)
    assert [r[0] for r in rows.values()] == [
        "w", "b", "x", "y", "c = w * x", "a = c + b", "d = a - y", "d_sq = d**2", "J = d_sq / 2",
    ]  # fmt: skip
    assert "dJ/" not in dot and 'p3 -> n2 [style="dashed"];' in dot


def test_names_match_explain():
    source = EXAMPLE.read_text()
    fn = load_function(source, str(EXAMPLE))
    ex = explain(fn, ["w", "b"], VALUES, source=source)
    plain = [n.name for n in graph_nodes(fn, ["w", "b"])]
    assert plain == [s.name for s in ex.params + ex.steps]


def test_fan_out():
    source = (
        "import math\n\ndef f(x, k):\n    y = x * x\n    z = math.sin(y) + x * k\n    return z\n"
    )
    fn = load_function(source, "fan.py")
    ex = explain(fn, ["x"], {"x": 1.5, "k": 3}, source=source)
    dot = graph_dot(fn, ["x"], ex)
    assert len(re.findall(r"^  p0 -> ", dot, re.MULTILINE)) == 3  # x*x reads x twice, x*k once
    assert "dz/dx = 1.11548 (sum of 3 edges)" in dot
    parts = re.findall(r"^  p0 -> n\d \[label=<.*?← ([-\d.]+)</FONT>", dot, re.MULTILINE)
    assert sorted(parts) == ["-0.94226", "-0.94226", "3"]


def test_labels_are_escaped():
    node = GraphNode("n0", "t", 'a < b & "c" > d', 3, step=None)
    text = _node(node, "J", 0)
    assert "a &lt; b &amp; &quot;c&quot; &gt; d" in text and "a < b" not in text


def test_cli_writes_dot(tmp_path):
    (tmp_path / "cost.py").write_text(COST)
    proc = run_srcdiff(tmp_path, "graph", "cost.py", "--wrt", "w,b", "--at", *AT, "-o", "g.dot")
    assert proc.returncode == 0, proc.stderr
    check_nodes(node_labels((tmp_path / "g.dot").read_text()))
    proc = run_srcdiff(tmp_path, "graph", "cost.py", "--wrt", "w,b", "-o", "-")
    assert proc.returncode == 0 and proc.stdout.startswith('digraph "cost"')


@pytest.mark.skipif(not HAS_DOT, reason="Graphviz `dot` is not installed")
def test_cli_renders_svg_and_png(tmp_path):
    (tmp_path / "cost.py").write_text(COST)
    proc = run_srcdiff(tmp_path, "graph", "cost.py", "--wrt", "w,b", "--at", *AT, "-o", "g.svg")
    assert proc.returncode == 0, proc.stderr
    assert "wrote g.svg" in proc.stderr
    svg = ET.parse(tmp_path / "g.svg").getroot()
    ns = {"s": "http://www.w3.org/2000/svg"}
    rows_by_node = {}
    for g in svg.iter("{http://www.w3.org/2000/svg}g"):
        if g.get("class") == "node":
            title = g.find("s:title", ns).text
            rows_by_node[title] = [t.text for t in g.iterfind(".//s:text", ns)]
    assert set(rows_by_node) == {"p0", "p1", "p2", "p3", "n0", "n1", "n2", "n3", "n4"}
    check_nodes(rows_by_node)
    proc = run_srcdiff(tmp_path, "graph", "cost.py", "--wrt", "w,b", "--at", *AT, "-o", "g.png")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "g.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert not list(tmp_path.glob(".*.tmp"))


def test_cli_without_dot_writes_the_dot_file_and_says_how_to_install(tmp_path):
    (tmp_path / "cost.py").write_text(COST)
    empty = tmp_path / "no-programs"
    empty.mkdir()
    env = {**os.environ, "PATH": str(empty)}
    proc = run_srcdiff(
        tmp_path, "graph", "cost.py", "--wrt", "w,b", "--at", *AT, "-o", "g.svg", env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "g.svg").exists()
    check_nodes(node_labels((tmp_path / "g.dot").read_text()))
    assert "warning" in proc.stderr and "g.dot" in proc.stderr
    assert "apt-get install graphviz" in proc.stderr and "brew install graphviz" in proc.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--wrt", "w,b", "-o", "g.pdf"], "cannot tell the format"),
        (["--wrt", "w,b", "-o", "missing/g.svg"], "does not exist"),
        (["--wrt", "q", "-o", "g.dot"], "q"),
        (["--wrt", "w,b", "--at", "w=2", "-o", "g.dot"], "missing: b, x, y"),
        (["--wrt", "w,b", "--at", "w=oops", "b=8", "x=-2", "y=2", "-o", "g.dot"], "w"),
        (["--wrt", "w,b", "--at", "z=1", "-o", "g.dot"], "z"),
        (["--wrt", "w,b", "-o", "cost.py"], "cannot tell the format"),
        (["--wrt", "w,b"], "-o"),
    ],
)
def test_cli_bad_input_exits_2_without_traceback(tmp_path, args, message):
    (tmp_path / "cost.py").write_text(COST)
    proc = run_srcdiff(tmp_path, "graph", "cost.py", *args)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert message in proc.stderr
    assert not [p for p in tmp_path.iterdir() if p.name not in ("cost.py",)]


def test_cli_bad_file_exits_2(tmp_path):
    (tmp_path / "broken.py").write_text("def f(x:\n")
    for name in ("broken.py", "nothere.py"):
        proc = run_srcdiff(tmp_path, "graph", name, "--wrt", "x", "-o", "g.dot")
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr


def test_loops_and_ifs_are_drawn_as_clusters():
    rnn = (
        Path(__file__).resolve().parent.parent / "generated_examples" / "rnn_states.py"
    ).read_text()
    fn = load_function(rnn, "rnn_states.py")
    dot = graph_dot(fn, ["Wx", "Wh", "b", "h"])
    assert dot.count("subgraph cluster_") == 1
    assert "for x_t in X:" in dot and "next step" in dot  # the carried state's back edge
    assert "np.tanh" in dot and "np.stack" in dot
    source = "def f(x, w):\n    if x > 0:\n        y = w * x\n    else:\n        y = -w\n    for i in range(3):\n        y = y * w\n    return y\n"
    dot = graph_dot(load_function(source, "f.py"), ["w"])
    assert dot.count("subgraph cluster_") == 3  # then, else, the loop's body
    assert "if x &gt; 0:" in dot and "else:" in dot and "for i in range(3):" in dot
    assert dot == graph_dot(load_function(source, "f.py"), ["w"])  # deterministic
    if shutil.which("dot"):
        from srcdiff.graph import render

        ET.fromstring(render(dot, "svg"))  # Graphviz reads it


def test_with_values_loops_are_drawn_pass_by_pass(tmp_path):
    """With --at, the graph is the one explain walks: each pass of a loop a cluster of its own,
    inside the loop's, with the pass's values and gradients on its nodes."""
    horner = Path(__file__).resolve().parent.parent / "generated_examples" / "horner.py"
    args = ["--wrt", "c,x", "--at", "c=[1.0, 2.0, 3.0]", "x=0.5"]
    proc = run_srcdiff(tmp_path, "graph", str(horner), *args, "-o", "-")
    assert proc.returncode == 0, proc.stderr
    dot = proc.stdout
    assert dot.count("subgraph cluster_") == 4  # the loop and its 3 passes
    for k in range(3):
        assert f"pass {k + 1} of 3, i = {k}" in dot
    rows = node_labels(dot)
    by_name = {r[0].split(" = ")[0]: r for r in rows.values()}
    assert "4.25" in by_name["p_3"] and "dp/d(p_3) = 1" in by_name["p_3"]
    assert "dp/d(p_1) = 0.25" in by_name["p_1"]
    assert "dp/dx = 3 (sum of 3 edges)" in by_name["x"]
    if HAS_DOT:
        out = tmp_path / "horner.svg"
        proc = run_srcdiff(tmp_path, "graph", str(horner), *args, "-o", str(out))
        assert proc.returncode == 0, proc.stderr
        svg = ET.fromstring(out.read_bytes())
        texts = [t.text for t in svg.iter("{http://www.w3.org/2000/svg}text") if t.text]
        assert "pass 2 of 3, i = 1" in texts and "dp/dx = 3 (sum of 3 edges)" in texts
