"""Differential fuzzing of srcdiff: random programs against central differences and another AD.

``python -m tests.fuzz --minutes 10 [--seed N] [--report FILE]`` (from the repository's root)
generates random programs from everything srcdiff differentiates (``programs.py``), generates each
one's gradient module in memory, and checks it (``case.py``) against two-sided central
differences of the original in float64 and, when autograd or JAX is importable, against that
independent AD system (``oracle.py``). Failures are shrunk by hypothesis and reported with the
program's source, the point, --wrt, --shapes and the mismatch (``run.py``). Failures of bugs
already diagnosed and pinned by a strict xfail test are recognized (``known.py``) and counted
apart, so a run keeps looking for new ones.

The pieces are shared with the test suite: ``tests/test_programs_hypothesis.py`` checks the scalar
programs of ``scalar.py``, ``tests/test_shapes.py`` declares shapes with ``declared_shapes``,
``tests/test_fuzz.py`` runs a short seeded budget, and ``tests/test_fuzz_regressions.py`` keeps
every failure the fuzzer found, minimized.
"""
