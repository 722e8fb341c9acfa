"""The graphs the whole-graph benchmark queues (``bench_full_graph.py``): the shipped API workflows with the run's
DiT file, clip, frame count, attention backend, speed nodes and steps, and what a prompt's sampler is set to."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from harness.speed_nodes import set_speed  # noqa: E402  (shared with the UI workflows' writer)

WORKFLOWS = {"full": REPO / "workflows" / "api" / "ex4d_full_api.json",  # 49 frames, DepthCrafter depth
             "fast": REPO / "workflows" / "api" / "ex4d_fast_api.json",  # the same, 4 steps at CFG 1 (distilled)
             "long": REPO / "workflows" / "api" / "ex4d_long_api.json"}  # 121 frames, true depth, context windows
CLIPS = {"full": (REPO / "assets" / "example" / "clip.mp4", None),
         "fast": (REPO / "assets" / "example" / "clip.mp4", None),
         "long": (REPO / "assets" / "example" / "clip_121.mp4", REPO / "assets" / "example" / "depth_121.npz")}
WAN_FILES = {"bf16": "wan2.1_i2v_480p_14B_bf16.safetensors", "fp8": "wan2.1_i2v_480p_14B_fp8_e4m3fn.safetensors",
             "q8_0": "wan2.1-i2v-14b-480p-Q8_0.gguf", "q4_k_m": "wan2.1-i2v-14b-480p-Q4_K_M.gguf"}
GGUF_WEIGHTS = ("q8_0", "q4_k_m")  # loaded by ComfyUI-GGUF's UnetLoaderGGUF (a third-party pack, not ours)
# the published recipe is the full workflow; the fast one is its 4-step twin with the step-distillation LoRA
RECIPES = {"published": "full", "fast": "fast"}


def prompt_for(weights: str, video: str, frames: int, attention: str = "workflow", workflow: str = "full",
               speed: str = "none", steps: int | None = None) -> dict[str, Any]:
    prompt = json.loads(WORKFLOWS[workflow].read_text())
    set_speed(prompt, speed)
    for node in prompt.values():
        inputs = node["inputs"]
        match node["class_type"]:
            case "EX4DLoadVideo":
                inputs.update(video=video, frame_load_cap=frames)
            case "EX4DLoadDepth":
                inputs.update(frame_load_cap=frames)
            case "UNETLoader" if weights in GGUF_WEIGHTS:
                node.update(class_type="UnetLoaderGGUF", inputs={"unet_name": WAN_FILES[weights]})
            case "UNETLoader":
                inputs.update(unet_name=WAN_FILES[weights], weight_dtype="default")
            case "EX4DApply":  # the published settings: the 512x320 render stretched to 512x512
                inputs.update(length=frames, resize="stretch (published)", width=512, height=512)
            case "EX4DWanSampler" if steps is not None:
                inputs.update(steps=steps)
            case "EX4DAttention" if attention != "workflow":
                inputs.update(backend=attention)
    return prompt


def oversized_prompt(weights: str, frames: int, attention: str, speed: str = "none",
                     steps: int | None = None) -> dict[str, Any]:
    # the full workflow (estimated depth)
    prompt = prompt_for(weights, "oversized.mp4", frames, attention, speed=speed, steps=steps)
    for node in prompt.values():
        if node["class_type"] == "EX4DLoadVideo":
            node["inputs"].update(resize="native")
    return prompt


def sampler_settings(prompt: dict[str, Any]) -> dict[str, Any]:
    sampler = next((n["inputs"] for n in prompt.values() if n["class_type"] == "EX4DWanSampler"), {})
    return {"steps": sampler.get("steps"), "cfg": sampler.get("cfg")}


def attention_backend(choice: str, workflow: str) -> str:
    if choice != "workflow":
        return choice
    nodes = json.loads(WORKFLOWS[workflow].read_text()).values()
    return next((n["inputs"]["backend"] for n in nodes if n["class_type"] == "EX4DAttention"), "host")
