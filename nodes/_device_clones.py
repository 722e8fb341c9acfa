"""The pack's object patches bound to one module of the DiT (camera patch embedding, fp8 Linear layers) on the
host's device clones (MultiGPU CFG Split, ComfyUI 0.33 and later)."""

from __future__ import annotations

from collections.abc import Callable

import comfy.patcher_extension
import torch

# bind(patch, module): the patch bound to ``module`` instead, or None for an object patch it does not own
Bind = Callable[[object, torch.nn.Module], object | None]


def rebind_on_device_clones(patched, key: str, bind: Bind) -> None:
    """Register, under ``key``, the host's ON_DEEPCLONE_MULTIGPU and ON_MATCH_MULTIGPU_CLONES callbacks that bind
    ``bind``'s patches to each device clone's own modules: a device's clone gets the object patches by
    reference, so they would run the first device's modules (what they share, such as the camera embedding and
    its per-device cache, stays shared)."""

    def rebind(primary, clone) -> None:
        for name, patch in list(clone.object_patches.items()):
            owner = name.rsplit(".", 1)[0]  # the module whose attribute (``forward``) the patch replaces
            bound = bind(patch, clone.get_model_object(owner)) if owner != name else None
            if bound is not None:
                clone.add_object_patch(name, bound)

    for name in ("ON_DEEPCLONE_MULTIGPU", "ON_MATCH_MULTIGPU_CLONES"):
        on_device_clone = getattr(comfy.patcher_extension.CallbacksMP, name, None)
        if on_device_clone is not None:
            patched.remove_callbacks_with_key(on_device_clone, key)  # a patched model patched again: once
            patched.add_callback_with_key(on_device_clone, key, rebind)
