"""Where ``torch.compile`` keeps what it compiled, so that a restarted process compiles in seconds.

Inductor keeps its FX graphs, AOTAutograd graphs, Triton kernels and autotuning results on disk under one folder
(``TORCHINDUCTOR_CACHE_DIR``), each entry keyed by what produced it: the PyTorch and Triton versions, the GPU,
the traced graph with its shapes and dtypes. A different torch, GPU or model shape therefore misses and compiles
anew; the same ones hit. By default that folder is in the system's temporary directory, which a reboot or a
temp cleaner may empty; :func:`use_folder` points it at a lasting one, one subfolder per PyTorch version so an
old version's entries can be deleted on their own. A folder the user chose (the variable set to anything but
PyTorch's default) is kept.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

ENV = "TORCHINDUCTOR_CACHE_DIR"
TRITON_ENV = "TRITON_CACHE_DIR"  # inductor sets it under its own folder at its first Triton kernel


def torch_default() -> str | None:
    """PyTorch's own default folder (None where this PyTorch does not say)."""
    try:
        from torch._inductor.runtime.cache_dir_utils import default_cache_dir
    except ImportError:
        return None
    return default_cache_dir()


def _same(a: str, b: str | None) -> bool:
    return b is not None and os.path.normcase(os.path.abspath(a)) == os.path.normcase(os.path.abspath(b))


def _under(path: str, folder: str | None) -> bool:
    if folder is None:
        return False
    path, folder = (os.path.normcase(os.path.abspath(p)) for p in (path, folder))
    return path == folder or path.startswith(folder + os.sep)


def folder_for(root: Path) -> Path:
    """The cache folder under ``root`` for this PyTorch (its version, ``+`` and ``.`` kept)."""
    return Path(root) / f"torch-{torch.__version__}"


def use_folder(root: Path) -> Path:
    """Point inductor's on-disk caches at :func:`folder_for` ``root`` (created) unless the user set ``ENV`` to a
    folder of their own; returns the folder in use. Later compilations in this process, other nodes' too, read
    and write there (the folder has no size limit: delete it to clear it). A Triton folder inductor had already
    set under PyTorch's default is let go, so inductor sets it again under the new folder."""
    chosen = os.environ.get(ENV)
    default = torch_default()
    if chosen and not _same(chosen, default):
        return Path(chosen)
    folder = folder_for(root)
    folder.mkdir(parents=True, exist_ok=True)
    os.environ[ENV] = str(folder)
    triton = os.environ.get(TRITON_ENV)
    if triton and _under(triton, chosen or default):
        del os.environ[TRITON_ENV]
    return folder
