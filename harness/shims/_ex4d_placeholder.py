"""Placeholder packages for torchvision and torchaudio on the CPU test machine.

PyPI's torchvision and torchaudio wheels do not import beside the pinned CPU torch, yet the host
imports them at start-up: 0.3.75 for Stable Cascade, 0.33 from its core (Cosmos, Gemma 4) and many
``comfy_extras`` modules. These packages let every such import succeed (submodules included, e.g.
``import torchvision.transforms.functional as F`` or ``from torchaudio.transforms import MelScale``);
the names they hand out fail with ImportError the moment they are used (called). The harness puts
them on the path only when a real package cannot be imported, behind every other entry, and takes
them away again once the host has imported (``harness.bootstrap.hide_shims``).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import types

MARKER = "__ex4d_placeholder__"


class Missing:
    """A name from a placeholder package: attribute chains resolve, any call fails."""

    def __init__(self, qualname: str):
        self._qualname = qualname

    def __getattr__(self, name: str) -> Missing:
        if name.startswith("__"):
            raise AttributeError(name)
        return Missing(f"{self._qualname}.{name}")

    def __call__(self, *args, **kwargs):
        root = self._qualname.split(".", 1)[0]
        raise ImportError(f"{self._qualname}: {root} is not installed in this test environment "
                          "(the harness provides a placeholder only so that ComfyUI can start)")

    def __repr__(self) -> str:
        return f"<placeholder {self._qualname}>"


def _module_getattr(module_name: str):
    def __getattr__(name: str) -> Missing:
        if name.startswith("__"):
            raise AttributeError(name)
        return Missing(f"{module_name}.{name}")

    return __getattr__


def fill(module: types.ModuleType) -> None:
    """Make ``module`` a placeholder: every attribute it lacks is a :class:`Missing`."""
    setattr(module, MARKER, True)
    module.__getattr__ = _module_getattr(module.__name__)


class _SubmoduleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Creates placeholder submodules below the placeholder packages."""

    def __init__(self):
        setattr(self, MARKER, True)
        self.roots: set[str] = set()

    def find_spec(self, fullname, path=None, target=None):
        root = fullname.split(".", 1)[0]
        if root not in self.roots or "." not in fullname:
            return None
        return importlib.machinery.ModuleSpec(fullname, self, is_package=True)

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        module.__path__ = []
        fill(module)


def make_package(module: types.ModuleType) -> None:
    """Called by a placeholder package's ``__init__`` with its own module."""
    fill(module)
    finder = next((f for f in sys.meta_path if getattr(f, MARKER, False)), None)
    if finder is None:
        finder = _SubmoduleFinder()
        sys.meta_path.append(finder)
    finder.roots.add(module.__name__)
