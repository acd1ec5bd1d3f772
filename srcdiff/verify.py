"""``srcdiff verify``: keep checked-in gradient modules in sync with their sources.

Every generated module records, in its header, the command that regenerates it (source file
relative to the module, function, ``--wrt``, output name) and a hash of the function's source. Verify
finds modules by that header, re-derives each one and compares: a module whose source changed is
*stale*; one whose source did not change but whose text differs was *edited by hand*. ``--fix``
regenerates both. Nothing here runs the user's code.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .api import compile_source, read_source
from .emit import GENERATED_MARK
from .errors import SrcdiffError

SKIP_DIRS = {".git", ".hg", ".venv", "venv", "__pycache__", "build", "dist", "node_modules", ".tox"}


@dataclass(frozen=True)
class Header:
    """What a generated module's header says about how it was made."""

    source: str  # relative to the module's directory, as recorded
    function: str
    wrt: str
    output: str | None
    source_hash: str
    shapes: str | None
    command: str
    includes: tuple[str, ...] = ()
    checkpoint_every: int | None = None


@dataclass
class Result:
    path: Path
    status: str  # "ok", "stale", "edited", "error"
    detail: str = ""
    command: str = ""


def read_header(path: Path) -> Header | None:
    """The header of a generated module, or None for any other file."""
    try:
        with open(path, encoding="utf-8") as f:
            head = [f.readline() for _ in range(4)]
    except (OSError, UnicodeDecodeError):
        return None
    if not head[0].startswith(GENERATED_MARK):
        return None
    fields = {}
    for line in head[1:]:
        key, _, value = line.removeprefix("# ").partition(": ")
        fields[key] = value.strip()
    argv = shlex.split(fields.get("Regenerate", ""))
    if len(argv) < 2 or argv[0] != "srcdiff":
        return None
    opts: dict[str, str] = {}
    for flag, value in zip(argv[2::2], argv[3::2]):
        opts[flag.lstrip("-")] = value
    if "function" not in opts or "wrt" not in opts:
        return None
    return Header(
        source=argv[1],
        function=opts["function"],
        wrt=opts["wrt"],
        output=opts.get("o"),
        source_hash=fields.get("Source hash", ""),
        shapes=opts.get("shapes"),
        includes=tuple(i for i in opts.get("include", "").split(",") if i),
        command=fields["Regenerate"],
        checkpoint_every=int(opts["checkpoint-every"]) if "checkpoint-every" in opts else None,
    )


def find_generated(paths: Iterable[Path]) -> Iterator[tuple[Path, Header]]:
    """Generated modules among ``paths`` (files, or folders searched recursively), in sorted order."""
    for root in paths:
        if root.is_file():
            candidates: Iterable[Path] = [root]
        else:
            found = []
            for folder, dirs, files in os.walk(root):
                dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
                found += [Path(folder) / f for f in sorted(files) if f.endswith(".py")]
            candidates = found
        for path in candidates:
            header = read_header(path)
            if header is not None:
                yield path, header


def check_module(path: Path, header: Header) -> tuple[Result, str | None]:
    """Compare one module with a fresh derivation; also return the fresh text when it differs."""
    where = (
        f"cd {shlex.quote(str(path.parent))} && {header.command}"
        if str(path.parent) != "."
        else header.command
    )
    source_path = path.parent / header.source
    try:
        source = read_source(source_path)
        includes = [(read_source(path.parent / name), name) for name in header.includes]
        generated = compile_source(
            source,
            header.wrt,
            filename=str(source_path),
            function=header.function,
            source_name=header.source,
            output=header.output,
            shapes=header.shapes,
            includes=includes,
            checkpoint_every=header.checkpoint_every,
        )
    except SrcdiffError as e:
        return (
            Result(
                path, "error", e.format().splitlines()[0].removeprefix("srcdiff: error: "), where
            ),
            None,
        )
    fresh = generated.text
    current = path.read_text(encoding="utf-8")
    if fresh == current:
        return Result(path, "ok"), None
    # the hash of the function (and of the functions it calls) as the source is now
    now_hash = generated.program.function.source_hash
    changed = header.source + (" (or a file it includes)" if header.includes else "")
    if now_hash != header.source_hash:
        return (
            Result(path, "stale", f"{changed} changed since it was generated", where),
            fresh,
        )
    return Result(path, "edited", "edited by hand (or by another srcdiff version)", where), fresh


def verify(paths: Iterable[Path], fix: bool = False) -> list[Result]:
    """Check (and with ``fix``, regenerate) every generated module under ``paths``."""
    from .cli import write_atomically

    results = []
    for path, header in find_generated(paths):
        result, fresh = check_module(path, header)
        if fix and fresh is not None:
            write_atomically(path, fresh)
            result.detail += "; regenerated"
        results.append(result)
    return results
