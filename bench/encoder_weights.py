"""Random umT5-XXL (ComfyUI's scaled fp8 file) and CLIP ViT-H/14 vision files in the layouts users download, from
the host's own modules; the text encoder carries a tokenizer trained here on the shipped workflow's prompts."""

from __future__ import annotations

import io
import json
import math

from host_layouts import REPO, host_file, meta_state_dict, require_names
from safetensors_stream import Layout, TensorSpec, unit_spec

WORKFLOW = REPO / "workflows" / "api" / "ex4d_full_api.json"
UMT5_TINY = {"d_ff": 64, "num_heads": 1, "vocab_size": 1024}


def umt5_config(scale: str) -> dict:
    config = json.loads(host_file("text_encoders/umt5_config_xxl.json").read_text())
    return {**config, **UMT5_TINY} if scale == "tiny" else config


def workflow_prompts() -> list[str]:
    prompt = json.loads(WORKFLOW.read_text())
    return [n["inputs"]["text"] for n in prompt.values() if n["class_type"] == "CLIPTextEncode"]


def tokenizer_model() -> bytes:
    """A SentencePiece model with umT5's special ids (pad 0, eos 1, unk 2) and byte fallback, trained here
    on the workflow's prompts: the repackaged file carries its tokenizer as ``spiece_model`` (the host
    has no umT5 tokenizer of its own), and the real 256k-piece model cannot be downloaded here."""
    import sentencepiece

    words = " ".join(workflow_prompts()).replace(",", " ").split()
    lines = [" ".join(words[i:] + words[:i]) for i in range(len(words))]
    out = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=out, vocab_size=1000, hard_vocab_limit=False,
        model_type="unigram", pad_id=0, eos_id=1, unk_id=2, bos_id=-1, byte_fallback=True,
        character_coverage=1.0, num_threads=1, minloglevel=2)
    return out.getvalue()


def umt5_layout(config: dict) -> Layout:
    """ComfyUI's ``umt5_xxl_fp8_e4m3fn_scaled`` layout: the 168 linear weights of the 24 blocks in
    float8_e4m3fn, each with a float32 ``.scale_weight`` (the real value is weight * scale); everything
    else (``shared``, relative attention biases, norms) in bf16; the ``scaled_fp8`` marker (an empty
    float8_e4m3fn tensor: both hosts read the fp8 format from its dtype, and 0.33 converts the file to its
    quantization metadata on load); the tokenizer as ``spiece_model`` bytes."""
    import comfy.ops
    import comfy.text_encoders.t5
    import torch

    with torch.device("meta"):
        model = comfy.text_encoders.t5.T5(config, torch.bfloat16, "meta", comfy.ops.manual_cast)
    linears = {f"{n}.weight": m for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    layout: Layout = {}
    for name, p in model.state_dict().items():
        shape = tuple(p.shape)
        if name in linears:
            layout[name] = TensorSpec(shape, torch.float8_e4m3fn, std=1.0)
            scale = torch.tensor(1.0 / math.sqrt(linears[name].in_features))
            layout[name.removesuffix("weight") + "scale_weight"] = TensorSpec((), torch.float32, data=scale)
        else:
            layout[name] = unit_spec(name, shape, torch.bfloat16)
    layout["scaled_fp8"] = TensorSpec((0,), torch.float8_e4m3fn)
    spm = tokenizer_model()
    layout["spiece_model"] = TensorSpec((len(spm),), torch.uint8,
                                        data=torch.frombuffer(bytearray(spm), dtype=torch.uint8))
    last = config["num_layers"] - 1
    require_names(layout, ("shared.weight", "encoder.final_layer_norm.weight",
                      "encoder.block.0.layer.0.SelfAttention.q.weight",
                      "encoder.block.0.layer.0.SelfAttention.q.scale_weight",
                      "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
                      f"encoder.block.{last}.layer.1.DenseReluDense.wi_1.weight"), "T5")
    return layout


def clip_vision_h_layout() -> Layout:
    """CLIP ViT-H/14's vision tower under the transformers names the host loads natively, fp16 (the
    repackaged file is 1.26 GB for 632 M parameters). Always full size: the host builds ViT-H from its
    fixed config, chosen by the presence of layer 30."""
    import comfy.clip_model
    import comfy.ops
    import torch

    config = json.loads(host_file("clip_vision_config_h.json").read_text())
    sd = meta_state_dict(lambda: comfy.clip_model.CLIPVisionModelProjection(
        config, torch.float16, "meta", comfy.ops.manual_cast))
    layout = {name: unit_spec(name, tuple(p.shape), torch.float16) for name, p in sd.items()}
    require_names(layout, ("vision_model.embeddings.class_embedding", "vision_model.pre_layrnorm.weight",
                      "vision_model.encoder.layers.30.layer_norm1.weight",
                      "vision_model.encoder.layers.31.mlp.fc2.weight", "visual_projection.weight"),
             "CLIPVisionModelProjection")
    return layout
