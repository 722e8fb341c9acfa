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


def torch_default() -> str:
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    return default_cache_dir()


def folder_for(root: Path) -> Path:
    """The cache folder under ``root`` for this PyTorch (its version, ``+`` and ``.`` kept)."""
    return Path(root) / f"torch-{torch.__version__}"


def use_folder(root: Path) -> Path:
    """Point inductor's on-disk caches at :func:`folder_for` ``root`` (created) unless the user set ``ENV`` to a
    folder of their own; returns the folder in use. Later compilations in this process read and write there."""
    chosen = os.environ.get(ENV)
    if chosen and os.path.abspath(chosen) != os.path.abspath(torch_default()):
        return Path(chosen)
    folder = folder_for(root)
    folder.mkdir(parents=True, exist_ok=True)
    os.environ[ENV] = str(folder)
    return folder
