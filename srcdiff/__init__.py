"""srcdiff: source-to-source reverse-mode differentiation of Python functions.

``srcdiff.generate`` writes a standalone gradient module; ``grad``, ``value_and_grad`` and
``check_grad`` build and check gradients from a function object or a file.
"""

__version__ = "0.1.0"

from .api import check_grad, generate, grad, value_and_grad  # noqa: E402
from .errors import SrcdiffError  # noqa: E402

__all__ = ["__version__", "generate", "grad", "value_and_grad", "check_grad", "SrcdiffError"]


def load_ipython_extension(ipython):  # type: ignore[no-untyped-def]
    """``%load_ext srcdiff`` in Jupyter/IPython: the ``%%srcdiff --wrt w,b`` cell magic."""
    from .ipython import load_ipython_extension as load

    load(ipython)
