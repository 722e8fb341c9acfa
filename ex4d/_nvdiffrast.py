"""Loading nvdiffrast where CUDA is, with the plugin-path fix (EX-4D reference, section 3).

With recent torch, nvdiffrast's JIT-compiled CUDA plugin is built but cannot be imported until its build
directory (``torch.utils.cpp_extension._get_build_directory(<plugin name>, False)``) is on ``sys.path``.
Nothing here runs at import time of ``ex4d``.
"""

from __future__ import annotations

import re
import sys
from types import ModuleType

import torch

_DEFAULT_PLUGIN_NAMES = ("nvdiffrast_plugin",)
_cached: ModuleType | None = None

# What a machine without a working nvdiffrast raises: the package missing (ImportError), its plugin failing to
# build or load (torch's extension builder raises RuntimeError, a missing compiler or library OSError), or no
# usable CUDA device (RuntimeError).
UNAVAILABLE = (ImportError, OSError, RuntimeError)


def _plugin_names() -> list[str]:
    """The plugin module names nvdiffrast's ``ops._get_plugin`` builds: versioned in current releases
    (``nvdiffrast_plugin_<version>_torch<torch version>[_gl]``, sanitised), plain in older ones."""
    names = list(_DEFAULT_PLUGIN_NAMES)
    try:
        import nvdiffrast

        base = f"nvdiffrast_plugin_{nvdiffrast.__version__}_torch{torch.__version__}"
        for suffix in ("", "_gl"):
            names.append(re.sub(r"\W|^(?=\d)", "_", base + suffix))
    except (ImportError, AttributeError):
        pass
    return names


def add_plugin_build_dirs() -> list[str]:
    """Put the nvdiffrast plugin build directories on ``sys.path``; returns the directories added."""
    from torch.utils import cpp_extension

    added = []
    for name in _plugin_names():
        try:
            path = cpp_extension._get_build_directory(name, False)
        except (AttributeError, TypeError, OSError):
            continue  # a private API: tolerate its changes, the import below reports the real problem
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
    if not torch.cuda.is_available():
        return False
    try:
        load()
    except UNAVAILABLE:
        return False
    return True


def context(device: torch.device) -> tuple[ModuleType, object]:
    """(``nvdiffrast.torch``, a CUDA rasteriser context on ``device``); creating the context builds or loads
    the plugin, so a machine where nvdiffrast cannot run raises one of :data:`UNAVAILABLE` here."""
    dr = load()
    return dr, dr.RasterizeCudaContext(device=device)
