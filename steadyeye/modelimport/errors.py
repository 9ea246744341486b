"""The one exception `steadyeye model import` raises for anything the user can fix."""

from __future__ import annotations


class ModelImportError(Exception):
    """The source model, its family or an import option cannot make a working Triton model."""
