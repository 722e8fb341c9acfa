"""Lazy nvdiffrast loading with the plugin-path fix (EX-4D reference, section 3).

With recent torch, nvdiffrast's JIT-compiled CUDA plugin is built but cannot be imported until its build
directory (``torch.utils.cpp_extension._get_build_directory(<plugin name>, False)``) is on ``sys.path``.
Nothing here runs at import time of ``ex4d``.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from types import ModuleType

_DEFAULT_PLUGIN_NAMES = ("nvdiffrast_plugin",)
_cached: ModuleType | None = None


def _plugin_names() -> list[str]:
    names = list(_DEFAULT_PLUGIN_NAMES)
    try:
        spec = importlib.util.find_spec("nvdiffrast.torch.ops")
        if spec is not None and spec.origin:
            with open(spec.origin, encoding="utf-8") as f:
                text = f.read()
            for name in re.findall(r"plugin_name\s*=\s*['\"]([A-Za-z0-9_]+)['\"]", text):
                if name not in names:
                    names.append(name)
    except (OSError, ImportError, ValueError):
        pass
    return names


def add_plugin_build_dirs() -> list[str]:
    """Put the nvdiffrast plugin build directories on ``sys.path``; returns the directories added."""
    from torch.utils import cpp_extension

    added = []
    for name in _plugin_names():
        try:
            path = cpp_extension._get_build_directory(name, False)
        except Exception:  # private API: tolerate changes, the import below reports the real problem
            continue
        if path not in sys.path:
            sys.path.append(path)
            added.append(path)
    return added


def load() -> ModuleType:
    """Import ``nvdiffrast.torch`` (raises ImportError when unavailable)."""
    global _cached
    if _cached is None:
        add_plugin_build_dirs()
        import nvdiffrast.torch as dr

        _cached = dr
    return _cached


def available() -> bool:
    """True when CUDA is usable and nvdiffrast imports (does not compile the plugin)."""
    import torch

    if not torch.cuda.is_available():
        return False
    try:
        load()
    except Exception:
        return False
    return True
