"""Fixtures shared by the test modules."""

from __future__ import annotations

import sys

import pytest


@pytest.fixture
def forget_user_modules():
    """In-process --check and check_grad import the user's file under a private name
    (``_srcdiff_user_*``); drop those modules after the test."""
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.startswith("_srcdiff_user_"):
            del sys.modules[name]
