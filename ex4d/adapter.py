"""The EX-4D checkpoint: LoRA on the Wan 2.1 DiT plus the camera encoder.

``ex4d.ckpt`` is one state dict holding both parts (PEFT names such as
``blocks.0.self_attn.q.lora_A.default.weight`` [rank, in] / ``...lora_B.default.weight`` [out, rank],
and ``latent_encoder.{0,2,4}.*`` / ``latent_patch_embedding.*``). :func:`load_adapter` reads it
weights-only (or from safetensors), normalises the names and splits it into an :class:`EX4DAdapter`.

The camera encoder turns VAE latents of the rendered colour and mask videos (:mod:`ex4d.camera_inputs`, at
the size :mod:`ex4d.resize` gives) into a tensor shaped like the DiT's patch-embedding output, which is added
to it before the blocks.
"""

from __future__ import annotations

import json
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

ENCODER_IN_CHANNELS = 32  # 16 latent channels of the masked colour video + 16 of the mask video
PUBLISHED_HIDDEN = 1024
PUBLISHED_RANK = 16
PUBLISHED_ALPHA = 16.0
ENCODER_KEYS = (
    "latent_encoder.0.weight",
    "latent_encoder.0.bias",
    "latent_encoder.2.weight",
    "latent_encoder.2.bias",
    "latent_encoder.4.weight",
    "latent_encoder.4.bias",
    "latent_patch_embedding.weight",
    "latent_patch_embedding.bias",
)
# Linear layers of each DiT block that the published LoRA targets (not k_img / v_img).
LORA_TARGETS = tuple(f"{a}.{p}" for a in ("self_attn", "cross_attn") for p in "qkvo") + ("ffn.0", "ffn.2")
# Wrappers that training / conversion tools put in front of the DiT's own names.
KEY_PREFIXES = (
    "base_model.model.",
    "module.",
    "model.",
    "diffusion_model.",
    "dit.",
    "transformer.",
    "pipe.",
    "_orig_mod.",
)
_LORA_RE = re.compile(
    r"^(?P<module>.+)\.(?P<kind>lora_A|lora_B|lora_down|lora_up)(?:\.default)?(?:\.weight)?$"
)
_ALPHA_RE = re.compile(r"^(?P<module>.+)\.alpha$")


class AdapterError(ValueError):
    """A file that is not a usable EX-4D checkpoint, or one that does not fit the model."""


@dataclass
class EX4DAdapter:
    """The two parts of an EX-4D checkpoint, with names normalised to the DiT's own (``blocks.N...``)."""

    lora: dict[str, tuple[torch.Tensor, torch.Tensor]]  # module name -> (A [rank, in], B [out, rank])
    rank: int
    alpha: float
    encoder_state: dict[str, torch.Tensor]  # ENCODER_KEYS -> tensors
    hidden_dim: int
    out_dim: int
    source: str = ""
    ignored_keys: list[str] = field(default_factory=list)

    @property
    def num_blocks(self) -> int:
        blocks = [int(m.group(1)) for name in self.lora if (m := re.match(r"blocks\.(\d+)\.", name))]
        return max(blocks) + 1 if blocks else 0

    @property
    def lora_parameters(self) -> int:
        return sum(a.numel() + b.numel() for a, b in self.lora.values())

    @property
    def encoder_parameters(self) -> int:
        return sum(t.numel() for t in self.encoder_state.values())

    def camera_encoder(
        self, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
    ) -> CameraEncoder:
        module = CameraEncoder(self.hidden_dim, self.out_dim, device=device, dtype=dtype)
        module.load_state_dict(self.encoder_state)
        return module.eval().requires_grad_(False)

    def describe(self) -> str:
        return (
            f"EX-4D adapter ({Path(self.source).name or 'in memory'}): LoRA rank {self.rank}, alpha "
            f"{self.alpha:g} on {len(self.lora)} layers of {self.num_blocks} blocks "
            f"({self.lora_parameters / 1e6:.1f} M), camera encoder {ENCODER_IN_CHANNELS}->"
            f"{self.hidden_dim}->{self.out_dim} ({self.encoder_parameters / 1e6:.1f} M)"
        )


class CameraEncoder(nn.Module):
    """The published camera encoder: three 1x1x1 Conv3d with SiLU, then a (1,2,2)/(1,2,2) Conv3d.

    Input: [B, 32, T, H, W] (VAE latents of the colour and mask videos); output
    [B, out_dim, T, H/2, W/2], the shape of the Wan DiT's patch-embedding output.
    """

    def __init__(
        self,
        hidden_dim: int = PUBLISHED_HIDDEN,
        out_dim: int = 5120,
        in_channels: int = ENCODER_IN_CHANNELS,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ):
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        self.latent_encoder = nn.Sequential(
            nn.Conv3d(in_channels, hidden_dim, 1, **kw),
            nn.SiLU(),
            nn.Conv3d(hidden_dim, hidden_dim, 1, **kw),
            nn.SiLU(),
            nn.Conv3d(hidden_dim, hidden_dim, 1, **kw),
        )
        self.latent_patch_embedding = nn.Conv3d(hidden_dim, out_dim, (1, 2, 2), stride=(1, 2, 2), **kw)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        return self.latent_patch_embedding(self.latent_encoder(latents))

    def encode(
        self,
        latents: torch.Tensor,
        chunk_frames: int = 4,
        scale: float = 1.0,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        """``forward(latents) * scale`` cast to ``dtype``, a few latent frames at a time.

        Every kernel spans one latent frame, so frames encode independently; chunking bounds the hidden
        activations (``hidden_dim`` channels at the latent's full resolution: 0.5 GiB in float32 for 31 latent
        frames of 64 x 64, a 121-frame 512 x 512 clip) to ``chunk_frames`` frames. ``latents`` may lie on another
        device (e.g. the CPU): each chunk moves to the encoder's device, and only the output is whole there.
        """
        weight = self.latent_patch_embedding.weight
        b, _, t, h, w = latents.shape
        out = torch.empty(b, weight.shape[0], t, h // 2, w // 2, device=weight.device, dtype=dtype or weight.dtype)
        for start in range(0, t, chunk_frames):
            part = latents[:, :, start : start + chunk_frames].to(weight.device, weight.dtype)
            encoded = self(part)
            out[:, :, start : start + chunk_frames] = encoded * scale if scale != 1.0 else encoded
        return out


# ---------------------------------------------------------------------------------------------
# Reading and writing checkpoints


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a checkpoint file: safetensors, or a torch.save dict read with weights_only=True."""
    path = Path(path)
    if not path.is_file():
        raise AdapterError(f"checkpoint not found: {path}")
    with open(path, "rb") as f:
        head = f.read(16)
    if path.suffix == ".safetensors" or (len(head) > 8 and head[8:9] == b"{"):
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, OSError) as e:
            raise AdapterError(
                f"{path.name} cannot be read as safetensors (damaged, or another kind of file); choose the EX-4D checkpoint (ex4d.ckpt or its safetensors copy)"
            ) from e
    try:
        data = torch.load(str(path), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as e:
        raise AdapterError(
            f"{path.name} is not a weights-only checkpoint (damaged, or it holds Python objects, which are never "
            f"loaded); choose the EX-4D checkpoint (ex4d.ckpt or its safetensors copy)"
        ) from e
    return _flatten_tensors(data, path.name)


def _flatten_tensors(data: object, name: str) -> dict[str, torch.Tensor]:
    if not isinstance(data, dict):
        raise AdapterError(f"{name}: holds a {type(data).__name__}, not a state dict")
    tensors = {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
    if tensors:
        return tensors
    # Training scripts often wrap the state dict: {"state_dict": {...}}, {"model": {...}}, ...
    for wrapper in ("state_dict", "model", "module", "dit", "params", "weights"):
        inner = data.get(wrapper)
        if isinstance(inner, dict):
            return _flatten_tensors(inner, name)
    raise AdapterError(f"{name}: holds no tensors (keys: {_sample(list(data))})")


def normalise_key(key: str) -> str:
    """Strip wrapper prefixes (``model.``, ``diffusion_model.``, ``dit.``, ``module.``, ...)."""
    changed = True
    while changed:
        changed = False
        for prefix in KEY_PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix) :]
                changed = True
    return key


def split_state_dict(sd: dict[str, torch.Tensor], source: str = "") -> EX4DAdapter:
    """Split a checkpoint's tensors into LoRA pairs and camera-encoder weights; validate shapes."""
    parts: dict[str, dict[str, torch.Tensor]] = {}
    alphas: dict[str, float] = {}
    encoder: dict[str, torch.Tensor] = {}
    ignored: list[str] = []
    for raw, tensor in sd.items():
        key = normalise_key(raw)
        if key in ENCODER_KEYS:
            encoder[key] = tensor
        elif m := _LORA_RE.match(key):
            kind = "A" if m["kind"] in ("lora_A", "lora_down") else "B"
            parts.setdefault(m["module"], {})[kind] = tensor
        elif (m := _ALPHA_RE.match(key)) and tensor.numel() == 1:
            alphas[m["module"]] = float(tensor.item())
        else:
            ignored.append(raw)
    name = Path(source).name or "checkpoint"
    if not parts and not encoder:
        raise AdapterError(
            f"{name} is not an EX-4D checkpoint: none of its {len(sd)} tensors is an EX-4D LoRA weight "
            "(blocks.N.<self_attn|cross_attn>.<q|k|v|o>.lora_A/lora_B[.default].weight, blocks.N.ffn.<0|2>...) "
            "or camera-encoder weight (latent_encoder.{0,2,4}.*, latent_patch_embedding.*). "
            f"It holds e.g.: {_sample(list(sd))}; choose the EX-4D checkpoint (ex4d.ckpt or its safetensors copy)"
        )
    missing = [k for k in ENCODER_KEYS if k not in encoder]
    if missing:
        raise AdapterError(
            f"{name}: the camera encoder is incomplete; missing {', '.join(missing)} "
            f"(found {len(parts)} LoRA layers{', ' + _sample(list(encoder)) if encoder else ''})"
        )
    if not parts:
        raise AdapterError(f"{name}: has the camera encoder but no LoRA weights (lora_A / lora_B)")
    lora: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    ranks: set[int] = set()
    for module, pair in sorted(parts.items(), key=lambda kv: _natural_key(kv[0])):
        if "A" not in pair or "B" not in pair:
            raise AdapterError(f"{name}: LoRA layer {module} has only lora_{'A' if 'A' in pair else 'B'}")
        a, b = pair["A"], pair["B"]
        if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[1]:
            raise AdapterError(
                f"{name}: LoRA layer {module} has mismatched shapes A {list(a.shape)}, "
                f"B {list(b.shape)} (expected A [rank, in], B [out, rank])"
            )
        ranks.add(a.shape[0])
        lora[module] = (a, b)
    if len(ranks) != 1:
        raise AdapterError(f"{name}: LoRA layers have different ranks {sorted(ranks)}")
    rank = ranks.pop()
    alpha_values = set(alphas.values())
    if len(alpha_values) > 1:
        raise AdapterError(f"{name}: LoRA layers have different alphas {sorted(alpha_values)}")
    # PEFT keeps alpha in its config, not in the weights; the published run used alpha = rank.
    alpha = alpha_values.pop() if alpha_values else float(rank)
    hidden, out_dim = _check_encoder(encoder, name)
    return EX4DAdapter(
        lora=lora,
        rank=rank,
        alpha=alpha,
        encoder_state=encoder,
        hidden_dim=hidden,
        out_dim=out_dim,
        source=str(source),
        ignored_keys=ignored,
    )


def _check_encoder(enc: dict[str, torch.Tensor], name: str) -> tuple[int, int]:
    w0, w2, w4, wp = (
        enc[f"{k}.weight"]
        for k in ("latent_encoder.0", "latent_encoder.2", "latent_encoder.4", "latent_patch_embedding")
    )
    hidden = w0.shape[0]
    expected = {
        "latent_encoder.0.weight": (hidden, ENCODER_IN_CHANNELS, 1, 1, 1),
        "latent_encoder.2.weight": (hidden, hidden, 1, 1, 1),
        "latent_encoder.4.weight": (hidden, hidden, 1, 1, 1),
        "latent_patch_embedding.weight": (wp.shape[0], hidden, 1, 2, 2),
    }
    for key, shape in expected.items():
        if tuple(enc[key].shape) != shape:
            raise AdapterError(f"{name}: {key} has shape {list(enc[key].shape)}, expected {list(shape)}")
        bias = enc[key.replace("weight", "bias")]
        if tuple(bias.shape) != (shape[0],):
            raise AdapterError(
                f"{name}: {key.replace('weight', 'bias')} has shape {list(bias.shape)}, expected [{shape[0]}]"
            )
    del w2, w4
    return hidden, wp.shape[0]


def load_adapter(path: str | Path) -> EX4DAdapter:
    """Read an EX-4D checkpoint (``ex4d.ckpt`` or a safetensors copy)."""
    path = Path(path)
    return split_state_dict(read_state_dict(path), source=str(path))


def adapter_state_dict(adapter: EX4DAdapter) -> dict[str, torch.Tensor]:
    """The adapter under the published names (PEFT ``.default`` LoRA names, encoder names), plus one
    ``<module>.alpha`` scalar per LoRA layer, so that the alpha travels with the weights whatever the file
    is later called."""
    out: dict[str, torch.Tensor] = {}
    for module, (a, b) in adapter.lora.items():
        out[f"{module}.lora_A.default.weight"] = a
        out[f"{module}.lora_B.default.weight"] = b
        out[f"{module}.alpha"] = torch.tensor(float(adapter.alpha))
    out.update(adapter.encoder_state)
    return out


def save_safetensors(adapter: EX4DAdapter, path: str | Path) -> Path:
    """Write the adapter as safetensors under the published names, with rank and alpha as metadata."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in adapter_state_dict(adapter).items()}
    meta = {
        "format": "ex4d-adapter",
        "rank": str(adapter.rank),
        "alpha": repr(float(adapter.alpha)),
        "hidden_dim": str(adapter.hidden_dim),
        "out_dim": str(adapter.out_dim),
        "source": Path(adapter.source).name,
        "summary": json.dumps(adapter.describe()),
    }
    save_file(tensors, str(path), metadata=meta)
    return path


def _natural_key(name: str) -> list[object]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _sample(keys: list[str], n: int = 6) -> str:
    shown = ", ".join(keys[:n])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > n else "") if keys else "(nothing)"
