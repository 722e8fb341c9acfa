"""ComfyUI glue for EX-4D on the host's own Wan 2.1 model: checks, LoRA patches, camera embedding.

Everything acts on a clone of the ModelPatcher: the LoRA goes through ``add_patches`` (the host's
LoRA math, merged into the weights when the model is loaded, so it costs nothing per step), and
(on a further clone, so the merged weights survive from clip to clip) the camera encoder's output is added to the patch-embedding output through an object patch of
``diffusion_model.patch_embedding.forward``. The host applies object patches when it loads that
clone and restores the original when it loads another, so the input MODEL stays unpatched.
"""

from __future__ import annotations

import logging
import threading
import types
from contextvars import ContextVar
from dataclasses import dataclass

import comfy.lora
import comfy.model_base
import comfy.model_management
import comfy.ops
import comfy.patcher_extension
import comfy.utils
import torch
from comfy_api.torch_helpers import set_torch_compile_wrapper

from ..ex4d import fp8
from ..ex4d.adapter import EX4DAdapter
from ..ex4d.attention import BackendAttention
from ..ex4d.sampling import LATENT_CHANNELS

log = logging.getLogger(__name__)

PATCH_EMBED_FORWARD = "diffusion_model.patch_embedding.forward"
CALLBACK_KEY = "ex4d_camera"
LORA_MARK = "ex4d_lora_strength"
FP8_KEY = "ex4d_fp8_linear"
ATTENTION_OVERRIDE = "optimized_attention_override"  # the host's hook for a model's attention function
WAN_I2V_IN_DIM = 36
# The host's context window (comfy.context_windows.IndexListContextWindow) of the DiT forward pass running in
# this thread, or None when the whole latent is sampled at once. Set by track_context_window around the pass.
CONTEXT_WINDOW: ContextVar = ContextVar("ex4d_context_window", default=None)


@dataclass(frozen=True)
class WanInfo:
    dim: int
    in_dim: int
    num_layers: int
    ffn_dim: int


def check_wan_dit(model) -> None:
    """A ValueError naming ``model`` unless it is a Wan 2.1 DiT (the speed settings know its blocks)."""
    base = getattr(model, "model", None)
    if not isinstance(base, comfy.model_base.WAN21) or not hasattr(getattr(base, "diffusion_model", None), "blocks"):
        name = type(base).__name__ if base is not None else type(model).__name__
        raise ValueError(f"model: this speed setting is made for the Wan 2.1 DiT (EX-4D's); got a {name} model. "
                         f"Connect the output of EX-4D LoRA or a Wan 2.1 loader.")


def check_wan_i2v(model) -> WanInfo:
    """The model's sizes, or a ValueError saying why EX-4D cannot use it (needs Wan 2.1 I2V)."""
    base = getattr(model, "model", None)
    dm = getattr(base, "diffusion_model", None)
    embed = getattr(dm, "patch_embedding", None)
    name = type(base).__name__ if base is not None else type(model).__name__
    if not isinstance(base, comfy.model_base.WAN21) or embed is None or not hasattr(dm, "blocks"):
        raise ValueError(
            f"model: EX-4D needs a Wan 2.1 image-to-video DiT (Wan2.1-I2V-14B-480P); got a {name} model"
        )
    in_dim = int(embed.weight.shape[1])
    has_clip = getattr(dm, "img_emb", None) is not None
    if in_dim != WAN_I2V_IN_DIM or not getattr(base, "image_to_video", False) or not has_clip:
        kind = "text-to-video" if in_dim == 16 and not has_clip else "non-I2V"
        raise ValueError(
            f"model: EX-4D needs a Wan 2.1 image-to-video DiT ({WAN_I2V_IN_DIM} input channels and the CLIP image "
            f"embedding img_emb, e.g. Wan2.1-I2V-14B-480P); this is a Wan {kind} model with {in_dim} input "
            f"channels{'' if has_clip else ' and no img_emb'}"
        )
    return WanInfo(dim=int(dm.dim), in_dim=in_dim, num_layers=len(dm.blocks), ffn_dim=int(dm.ffn_dim))


def check_adapter_fits(model, info: WanInfo, adapter: EX4DAdapter) -> None:
    """Refuse a checkpoint made for another DiT, naming both sizes."""
    if adapter.out_dim != info.dim:
        raise ValueError(
            f"adapter: this EX-4D checkpoint was made for a DiT of width {adapter.out_dim} (its camera encoder "
            f"outputs {adapter.out_dim} channels), but the model's width is {info.dim}. Use the checkpoint that "
            f"belongs to this Wan model (EX-4D was trained on Wan2.1-I2V-14B, width 5120)."
        )
    if adapter.num_blocks > info.num_layers:
        raise ValueError(
            f"adapter: this EX-4D checkpoint has LoRA weights for {adapter.num_blocks} blocks, but the model "
            f"has {info.num_layers}"
        )
    for name, (a, b) in adapter.lora.items():
        try:
            weight = comfy.utils.get_attr(model.model, f"diffusion_model.{name}.weight")
        except AttributeError:
            raise ValueError(f"adapter: LoRA layer {name} has no counterpart in the model") from None
        expected = (b.shape[0], a.shape[1])
        if tuple(weight.shape) != expected:
            raise ValueError(
                f"adapter: LoRA layer {name} is [out {expected[0]}, in {expected[1]}] but the model's weight "
                f"is [out {weight.shape[0]}, in {weight.shape[1]}] (model width {info.dim}, FFN {info.ffn_dim}): "
                f"the checkpoint was made for another DiT"
            )


def lora_patches(model, adapter: EX4DAdapter) -> dict:
    """The adapter's LoRA as host weight patches (comfy.lora's own LoRA format and math)."""
    sd: dict[str, torch.Tensor] = {}
    for name, (a, b) in adapter.lora.items():
        prefix = f"diffusion_model.{name}"
        sd[f"{prefix}.lora_A.weight"] = a
        sd[f"{prefix}.lora_B.weight"] = b
        sd[f"{prefix}.alpha"] = torch.tensor(float(adapter.alpha))
    key_map = comfy.lora.model_lora_keys_unet(model.model, {})
    patches = comfy.lora.load_lora(sd, key_map, log_missing=False)
    if len(patches) != len(adapter.lora):
        raise ValueError(
            f"adapter: only {len(patches)} of {len(adapter.lora)} LoRA layers map onto the model"
        )
    return patches


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


def rebind_on_device_clone(primary, clone) -> None:
    """The host's ON_DEEPCLONE_MULTIGPU and ON_MATCH_MULTIGPU_CLONES callback (MultiGPU CFG Split): a device's
    clone gets the object patches by reference, so the camera patch would run the first device's patch
    embedding; bind it to the clone's own module (the camera embedding, and its per-device cache, stay shared)."""
    patch = clone.object_patches.get(PATCH_EMBED_FORWARD)
    if isinstance(patch, PatchEmbeddingWithCamera):
        clone.add_object_patch(PATCH_EMBED_FORWARD, patch.on(clone.get_model_object("diffusion_model.patch_embedding")))


def with_ex4d_lora(model, adapter: EX4DAdapter, strength: float = 1.0):
    """A clone of ``model`` carrying the EX-4D LoRA as host weight patches; ``model`` itself is untouched.

    Kept apart from the camera embedding on purpose: the host merges weight patches into the DiT when it
    loads a clone whose patches differ from the ones merged (a new ``patches_uuid``), which for the 14B
    model costs seconds. A LoRA'd clone made once (a node whose inputs don't change between clips) lets
    every later clip's camera clone reuse the merged weights; only its object patch changes.
    """
    info = check_wan_i2v(model)
    check_adapter_fits(model, info, adapter)
    patched = model.clone()
    if strength != 0.0:
        patched.add_patches(lora_patches(model, adapter), strength)
    patched.model_options["transformer_options"][LORA_MARK] = float(strength)
    return patched


def ex4d_lora_strength(model) -> float | None:
    """The strength EX-4D LoRA was applied with to ``model`` (0.0 if left out on purpose), or None."""
    return model.model_options.get("transformer_options", {}).get(LORA_MARK)


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
        on_device_clones(patched, CALLBACK_KEY, rebind_on_device_clone)
    return patched


class AttentionOverride:
    """The host's ``optimized_attention_override``: attention on one PyTorch backend where it has a kernel;
    masked calls and calls it has no kernel for go to the override this one replaced, else the host's own (in
    compiled code, unmasked calls without a kernel go to PyTorch's next exact backend: see BackendAttention)."""

    def __init__(self, attention: BackendAttention, previous=None):
        self.attention = attention
        self.previous = previous

    def __call__(self, func, q, k, v, heads, mask=None, skip_reshape=False, skip_output_reshape=False, **kwargs):
        def host_attention() -> torch.Tensor:
            if self.previous is not None:
                return self.previous(
                    func, q, k, v, heads, mask=mask, skip_reshape=skip_reshape,
                    skip_output_reshape=skip_output_reshape, **kwargs,
                )
            return func(
                q, k, v, heads, mask=mask, skip_reshape=skip_reshape, skip_output_reshape=skip_output_reshape,
                **kwargs,
            )

        if mask is not None or kwargs.get("enable_gqa"):
            return host_attention()
        return self.attention(
            q, k, v, heads, host_attention, skip_reshape, skip_output_reshape, scale=kwargs.get("scale")
        )


def with_attention(model, backend: str):
    """A clone of ``model`` whose attention runs on ``backend`` (``ex4d.attention.BACKENDS``) where PyTorch
    has a kernel of it; ``model`` is untouched. Model options only: the merged weights are shared."""
    patched = model.clone()
    options = patched.model_options["transformer_options"]
    options[ATTENTION_OVERRIDE] = AttentionOverride(BackendAttention(backend), options.get(ATTENTION_OVERRIDE))
    return patched


class Fp8Devices:
    """Whether scaled fp8 runs on each device (``ex4d.fp8.can_run``), decided by the host's APPLY_MODEL wrapper
    before the blocks run: the probe and its log line would break a compiled block's graph."""

    def __init__(self):
        self.usable: dict[torch.device, bool] = {}

    def decide(self, device: torch.device) -> bool:
        if device not in self.usable:
            usable = self.usable.setdefault(device, fp8.can_run(device))
            how = "scaled fp8 (e4m3)" if usable else "the host's Linear (no fp8 matmul here)"
            log.info("EX-4D fp8 Linear on %s: %s", device, how)
        return self.usable[device]

    def apply_model(self, executor, x, *args, **kwargs):
        self.decide(x.device)
        return executor(x, *args, **kwargs)


def casts_weights(module: torch.nn.Module) -> bool:
    """The host's own test in its Linear ``forward`` (comfy.ops): whether the layer's weight is cast at each call
    (manual cast of a stored dtype, offloaded or streamed weights, weight patches applied on the fly)."""
    return bool(getattr(module, "comfy_cast_weights", False) or getattr(module, "weight_function", None)
                or getattr(module, "bias_function", None))


def fp8_forward(devices: Fp8Devices):
    """The ``forward`` that EX-4D FP8 Linear binds to each block Linear of one model (``types.MethodType``: one
    function for all layers, so a compiled block's guards hold for every block): the layer's weight and bias as
    the host's Linear takes them (where the host casts them at each call, its own cast: to the input's device and
    dtype, weight patches such as LoRAs applied, offloaded weights streamed in), then
    :func:`ex4d.fp8.scaled_linear`. On a device where fp8 cannot run (or one not
    decided, a call from outside the sampler's passes) and for sizes ``torch._scaled_mm`` does not take, the
    layer's class ``forward`` runs instead."""

    def forward(module: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
        if (not x.is_floating_point() or not fp8.fits(module.in_features, module.out_features)
                or not devices.usable.get(x.device, False)):
            return type(module).forward(module, x)
        comfy.ops.run_every_op()
        if not casts_weights(module):  # as the host's Linear: its stored weight as it is (and no graph break)
            return fp8.scaled_linear(x, module.weight, module.bias)
        weight, bias, offload_stream = comfy.ops.cast_bias_weight(module, x, offloadable=True)
        out = fp8.scaled_linear(x, weight, bias)
        comfy.ops.uncast_bias_weight(module, weight, bias, offload_stream)
        return out

    setattr(forward, FP8_KEY, True)
    return forward


def is_fp8_forward(patch) -> bool:
    return isinstance(patch, types.MethodType) and getattr(patch.__func__, FP8_KEY, False)


def block_linears(model) -> dict[str, torch.nn.Linear]:
    """The Linear layers of the DiT's transformer blocks by object-patch key of their ``forward``
    (``diffusion_model.blocks.<i>.<path>.forward``): attention projections and FFN, 12 a block in Wan I2V.
    Layers of a scaled fp8 file (the host's ``scale_weight`` or its quantized layer types) are left out: the
    host's own forward applies their scales."""
    blocks = model.get_model_object("diffusion_model.blocks")
    return {
        f"diffusion_model.blocks.{name}.forward": module
        for name, module in blocks.named_modules()
        if isinstance(module, torch.nn.Linear) and getattr(module, "scale_weight", None) is None
    }


def on_device_clones(patched, key: str, callback) -> None:
    """Register ``callback(primary, clone)`` for the host's device clones (MultiGPU CFG Split, 0.33 and later)."""
    for name in ("ON_DEEPCLONE_MULTIGPU", "ON_MATCH_MULTIGPU_CLONES"):
        on_device_clone = getattr(comfy.patcher_extension.CallbacksMP, name, None)
        if on_device_clone is not None:
            patched.add_callback_with_key(on_device_clone, key, callback)


def with_fp8_linear(model):
    """A clone of ``model`` whose transformer-block Linear layers multiply in scaled fp8 (``ex4d.fp8``) where
    the GPU can; ``model`` and its weights are untouched (object patches of ``forward``)."""
    check_wan_dit(model)
    patched = model.clone()
    layers = block_linears(patched)
    if not layers:
        raise ValueError(
            "model: its blocks hold no plain Linear layers (a scaled fp8 or otherwise quantized file, whose "
            "layers the host multiplies itself); EX-4D FP8 Linear works on bf16, fp16 and fp8_e4m3fn files"
        )
    devices = Fp8Devices()
    forward = fp8_forward(devices)
    for key, module in layers.items():
        patched.add_object_patch(key, types.MethodType(forward, module))
    patched.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.APPLY_MODEL, FP8_KEY, devices.apply_model)
    on_device_clones(patched, FP8_KEY, rebind_fp8_on_device_clone)
    return patched


def rebind_fp8_on_device_clone(primary, clone) -> None:
    """As :func:`rebind_on_device_clone`, for the fp8 Linear patches: each device's clone multiplies with its
    own layers' weights, not the first device's."""
    layers = block_linears(clone)
    for key, patch in list(clone.object_patches.items()):
        if is_fp8_forward(patch) and key in layers:
            clone.add_object_patch(key, types.MethodType(patch.__func__, layers[key]))


COMPILE_BACKEND = "inductor"


def with_compiled_blocks(model):
    """A clone of ``model`` whose transformer blocks run under ``torch.compile`` (the compiled code is shared by
    the blocks; inductor fuses the norms, RoPE and modulation, and fp8 quantising, around the matmuls and
    attention calls), through the host's own compile wrapper. It replaces another compile wrapper of the
    host's (TorchCompileModel) on the same model."""
    check_wan_dit(model)
    patched = model.clone()
    count = len(patched.get_model_object("diffusion_model.blocks"))
    set_torch_compile_wrapper(
        patched, backend=COMPILE_BACKEND, keys=[f"diffusion_model.blocks.{i}" for i in range(count)]
    )
    return patched


def check_wan_vae(vae) -> None:
    if getattr(vae, "latent_channels", None) != LATENT_CHANNELS or getattr(vae, "latent_dim", None) != 3:
        raise ValueError(
            f"vae: EX-4D needs the Wan 2.1 VAE ({LATENT_CHANNELS} latent channels, video); this VAE has "
            f"{getattr(vae, 'latent_channels', '?')} latent channels"
        )


def vae_encode_pm1(vae, video: torch.Tensor) -> torch.Tensor:
    """Raw VAE latents of a [T, H, W, 3] video given in the VAE's [-1, 1] input space.

    ComfyUI's VAE.encode takes [0, 1] images and maps them with ``x * 2 - 1`` without clamping (0.3.75,
    Wan 2.1 VAE), so values outside [-1, 1], such as the published {-3, +1} mask, pass through as
    ``(x + 1) / 2``. Should a VAE's input mapping differ, the model's own encoder is called directly
    on the [-1, 1]-space tensor.
    """
    probe = vae.process_input(torch.tensor([0.0, 1.0, -1.0]))
    if torch.allclose(probe.float(), torch.tensor([-1.0, 1.0, -3.0])):
        return vae.encode((video + 1.0) / 2.0)
    vae.throw_exception_if_invalid()
    comfy.model_management.load_models_gpu([vae.patcher])
    pixels = video.movedim(-1, 0).unsqueeze(0).to(vae.device, vae.vae_dtype)
    with torch.no_grad():
        out = vae.first_stage_model.encode(pixels)
    return out.to(comfy.model_management.intermediate_device()).float()
