"""The camera half of EX-4D Apply on the host's Wan 2.1 model: the camera encoder's output added to the
patch-embedding output through an object patch of ``diffusion_model.patch_embedding.forward``, on a clone of
the ModelPatcher (a further clone of EX-4D LoRA's, so the merged LoRA weights survive from clip to clip). The
host applies object patches when it loads that clone and restores the original when it loads another, so the
input MODEL stays unpatched. Under the host's context windows each forward pass gets the embedding of its own
window's latent frames."""

from __future__ import annotations

import threading
from contextvars import ContextVar

import comfy.patcher_extension
import torch

from ..ex4d.adapter import EX4DAdapter
from ._device_clones import rebind_on_device_clones
from .wan_checks import check_adapter_fits, check_wan_i2v

PATCH_EMBED_FORWARD = "diffusion_model.patch_embedding.forward"
CALLBACK_KEY = "ex4d_camera"
# The host's context window (comfy.context_windows.IndexListContextWindow) of the DiT forward pass running in
# this thread, or None when the whole latent is sampled at once. Set by track_context_window around the pass.
CONTEXT_WINDOW: ContextVar = ContextVar("ex4d_context_window", default=None)


class CameraEmbedding:
    """The camera encoder's output for one set of camera latents, computed once per device and dtype.

    The encoder runs in float32 on the device of the patch embedding at the first forward pass (it is
    small: 23 M parameters); the result is kept until the host cleans the model up after sampling.

    One entry per (device, dtype): under the host's MultiGPU CFG Split every device's clone carries this same
    object (object patches are copied by reference), and the host runs each device's forward pass in a thread
    of its own. A lock per key makes a second caller of the same key wait for the first one's result instead
    of computing it again; callers of different keys (devices) compute at the same time. The lock that guards
    the dictionaries is never held while the encoder runs.
    """

    def __init__(self, adapter: EX4DAdapter, latents: torch.Tensor, strength: float = 1.0):
        self.adapter = adapter
        self.latents = latents.detach().to("cpu", torch.float32)
        self.strength = float(strength)
        # None until the first entry and again after clear() (what the host's cleanup leaves)
        self._cache: dict[tuple[torch.device, torch.dtype], torch.Tensor] | None = None
        self._key_locks: dict[tuple[torch.device, torch.dtype], threading.Lock] = {}
        self._lock = threading.Lock()
        self._generation = 0  # bumped by clear(): a computation that started before it is not cached

    def compute(self, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
        encoder = self.adapter.camera_encoder(device=device, dtype=torch.float32)
        with torch.no_grad():
            return encoder.encode(self.latents, scale=self.strength, dtype=dtype)

    def get(self, like: torch.Tensor) -> torch.Tensor:
        key = (like.device, like.dtype)
        cache = self._cache  # one read of the attribute, and a dict read is atomic: the common path takes no lock
        out = cache.get(key) if cache is not None else None
        if out is not None:
            return out
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
            generation = self._generation
        with key_lock:
            cache = self._cache
            out = cache.get(key) if cache is not None else None
            if out is None:  # the first caller of this key; later ones found it above or wait here
                out = self.compute(like.device, like.dtype)
                with self._lock:
                    if generation == self._generation:  # not cleaned up meanwhile
                        self._cache = {**(self._cache or {}), key: out}  # a new dict: readers never see it change
        return out

    def cached_keys(self) -> list[tuple[torch.device, torch.dtype]]:
        with self._lock:
            return list(self._cache or {})

    def clear(self, *args) -> None:
        with self._lock:
            self._cache = None
            self._key_locks.clear()
            self._generation += 1


def track_context_window(executor, x, t, c_concat=None, *args, **kwargs):
    """The host's APPLY_MODEL wrapper: makes the forward pass's context window (when the host samples in
    windows) known to the camera patch, which has only ``x`` to go by."""
    options = args[2] if len(args) > 2 else kwargs.get("transformer_options") or {}
    window = options.get("context_window")
    if window is not None and c_concat is not None and c_concat.shape[2:3] != x.shape[2:3]:
        raise ValueError(
            "model: this ComfyUI's context windows do not cut the Wan I2V image conditioning to each window "
            f"({c_concat.shape[2]} latent frames for a window of {x.shape[2]}); update ComfyUI (0.33 does), "
            "or remove the context-windows node and sample the clip whole"
        )
    token = CONTEXT_WINDOW.set(window)
    try:
        return executor(x, t, c_concat, *args, **kwargs)
    finally:
        CONTEXT_WINDOW.reset(token)


class PatchEmbeddingWithCamera:
    """Replaces ``patch_embedding.forward`` on the patched clone: original output + camera embedding."""

    def __init__(self, module: torch.nn.Module, camera: CameraEmbedding, previous=None):
        self.module = module
        self.camera = camera
        self.previous = previous

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = self.previous(x) if self.previous is not None else type(self.module).forward(self.module, x)
        emb = self.camera.get(out)
        window = CONTEXT_WINDOW.get()
        if window is not None:
            # the host samples in context windows: the frames of this forward pass are the window's latent
            # frames, picked by the host's own window object as it picks the latent's
            emb = window.get_tensor(emb, device=emb.device, dim=window.dim)
        if emb.shape[2:] != out.shape[2:] or emb.shape[1] != out.shape[1]:
            raise ValueError(
                f"EX-4D: the camera embedding has grid {list(emb.shape[2:])} but the latent being sampled gives "
                f"{list(out.shape[2:])}: sample the latent that the same EX-4D Apply outputs (its size and "
                "length match the camera latents)"
            )
        return out + emb

    def on(self, module: torch.nn.Module) -> PatchEmbeddingWithCamera:
        """The same patch (same camera embedding and its per-device cache) bound to another model's module."""
        previous = self.previous.on(module) if isinstance(self.previous, PatchEmbeddingWithCamera) else self.previous
        return PatchEmbeddingWithCamera(module, self.camera, previous)


def bound_camera_patch(patch, module: torch.nn.Module) -> PatchEmbeddingWithCamera | None:
    """The camera patch bound to a device clone's own patch embedding (see rebind_on_device_clones)."""
    return patch.on(module) if isinstance(patch, PatchEmbeddingWithCamera) else None


def with_camera(model, adapter: EX4DAdapter, camera_latents: torch.Tensor, strength: float = 1.0):
    """A clone of ``model`` whose patch embedding adds the camera encoder's output; ``model`` is untouched."""
    info = check_wan_i2v(model)
    check_adapter_fits(model, info, adapter)
    patched = model.clone()
    if strength != 0.0:
        camera = CameraEmbedding(adapter, camera_latents, strength)
        module = patched.get_model_object("diffusion_model.patch_embedding")
        # Chain onto an earlier object patch of the same forward (e.g. EX-4D applied twice on purpose).
        previous = patched.object_patches.get(PATCH_EMBED_FORWARD)
        patched.add_object_patch(PATCH_EMBED_FORWARD, PatchEmbeddingWithCamera(module, camera, previous))
        patched.add_callback_with_key(
            comfy.patcher_extension.CallbacksMP.ON_CLEANUP, CALLBACK_KEY, camera.clear
        )
        patched.add_wrapper_with_key(
            comfy.patcher_extension.WrappersMP.APPLY_MODEL, CALLBACK_KEY, track_context_window
        )
        rebind_on_device_clones(patched, CALLBACK_KEY, bound_camera_patch)
    return patched
