"""What the random model files are checked against: the host's own modules, built on the meta device, and the
names every real file of theirs carries (shared by the file writers of ``full_weights`` and ``encoder_weights``)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from safetensors_stream import Layout

if TYPE_CHECKING:
    import torch

REPO = Path(__file__).resolve().parent.parent


def setup_host(host: Path) -> None:
    """Make the host's modules importable (CPU mode without CUDA) without starting it."""
    sys.path.insert(0, str(REPO))
    from harness.bootstrap import hide_shims, put_on_path

    # where torchvision / torchaudio do not import, the test harness's placeholders stand in while the
    # host's modules import, then leave, so that diffusers and transformers see none
    put_on_path(host)
    import torch
    from comfy.cli_args import args

    args.cpu = not torch.cuda.is_available()
    import comfy.clip_model  # noqa: F401
    import comfy.ldm.wan.model  # noqa: F401
    import comfy.ldm.wan.vae  # noqa: F401
    import comfy.ops  # noqa: F401
    import comfy.text_encoders.t5  # noqa: F401

    hide_shims()


def host_file(name: str) -> Path:
    """A file of the host's ``comfy`` package (a namespace package: no ``__file__`` of its own)."""
    import comfy.ops

    return Path(comfy.ops.__file__).parent / name


def meta_state_dict(build: Callable[[], torch.nn.Module]) -> dict[str, torch.Tensor]:
    import torch

    with torch.device("meta"):
        return build().state_dict()


def require_names(layout: Layout, names: tuple[str, ...], what: str) -> None:
    missing = [n for n in names if n not in layout]
    if missing:
        raise AssertionError(f"the host's {what} no longer has the real file's names: {missing}")
