"""The one error type srcdiff raises for bad input, and how it is shown.

Every problem with the user's input (syntax, unsupported constructs, unknown names, bad options)
becomes a ``SrcdiffError`` that knows where it happened, so the CLI can print one
``FILE:LINE:COL`` line, the source line with a caret, and the rewrite that would work, instead of a
traceback.
"""

from __future__ import annotations


class SrcdiffError(Exception):
    """Bad input: carries the location and, where one exists, a rewrite that would work."""

    def __init__(
        self,
        message: str,
        *,
        filename: str | None = None,
        line: int | None = None,
        col: int | None = None,
        source_line: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.filename = filename
        self.line = line
        self.col = col  # 1-based, as editors count
        self.source_line = source_line
        self.hint = hint
        # Python's syntax tree counts columns in UTF-8 bytes; set until converted with the source line.
        self.byte_col = False

    def located(self, filename: str, source: str | None = None) -> SrcdiffError:
        """Fill in the file (and source line) where the caller knows them and the raiser did not.

        The source line is taken only for an error in that same file: an error already located in
        an included file must not be shown with the line of the same number in the main file.
        """
        if self.filename is None:
            self.filename = filename
        same_file = self.filename == filename
        if self.source_line is None and source is not None and self.line and same_file:
            lines = source.splitlines()
            if 0 < self.line <= len(lines):
                self.source_line = lines[self.line - 1]
        if self.byte_col and self.source_line is not None and self.col is not None:
            prefix = self.source_line.encode("utf-8")[: self.col - 1]
            self.col = len(prefix.decode("utf-8", errors="ignore")) + 1
            self.byte_col = False
        return self

    def format(self) -> str:
        """One ``srcdiff: error: FILE:LINE:COL: message`` line, then the source line, caret, hint."""
        where = self.filename or "<input>"
        if self.line is not None:
            where += f":{self.line}"
            if self.col is not None:
                where += f":{self.col}"
        out = [f"srcdiff: error: {where}: {self.message}"]
        if self.source_line is not None:
            text = self.source_line.rstrip("\n").expandtabs(4)
            out.append(f"    {text}")
            if self.col is not None:
                # The caret goes under the same character once tabs are expanded.
                lead = self.source_line[: max(self.col - 1, 0)].expandtabs(4)
                out.append("    " + " " * len(lead) + "^")
        if self.hint:
            out.append(f"hint: {self.hint}")
        return "\n".join(out)

    def __str__(self) -> str:
        return self.format()


def at_node(node: object, message: str, hint: str | None = None) -> SrcdiffError:
    """An error at a syntax tree node (its column counted in UTF-8 bytes, as ``ast`` gives it)."""
    err = SrcdiffError(
        message,
        line=getattr(node, "lineno", None),
        col=getattr(node, "col_offset", 0) + 1,
        hint=hint,
    )
    err.byte_col = True
    return err
