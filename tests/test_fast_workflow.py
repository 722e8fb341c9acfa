"""workflows/api/ex4d_fast_api.json: the full graph with a step-distillation LoRA, 4 steps at CFG 1.

On tiny random models, made tiny as the whole-graph test makes them (``tiny_version``), with a tiny LoRA in
lightx2v's layout in the host's LoraLoaderModelOnly; the sampler keeps the shipped steps. A wrapper on the
host's Wan DiT forward, installed by the test, records the batch of every forward pass.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from ex4d import sampling
from harness import tiny_models as tm
from tests.test_full_workflow import full_host, tiny_version  # noqa: F401  (full_host: a fixture)

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = REPO / "workflows" / "api"
TINY_LORA = "fast_tiny_lightx2v.safetensors"
# lightx2v's 4-step distillation samples at these of its 1000 training timesteps (its denoising_step_list)
LIGHTX2V_TIMESTEPS = (1000, 750, 500, 250)
LORA_SUFFIXES = {".lora_down.weight": ".weight", ".lora_up.weight": ".weight", ".alpha": ".weight",
                 ".diff": ".weight", ".diff_b": ".bias"}


def _shipped(name: str) -> dict:
    return json.loads((WORKFLOWS / f"{name}_api.json").read_text())


def _node_id(prompt: dict, class_type: str) -> str:
    (node_id,) = [i for i, n in prompt.items() if n["class_type"] == class_type]
    return node_id


@pytest.fixture(scope="module")
def fast_host(full_host):  # noqa: F811
    tm.write_tiny_distill_lora(full_host.models_dir / "loras" / TINY_LORA, 128, 2, 256)
    return full_host


@pytest.fixture
def dit_batches(monkeypatch) -> list[int]:
    """The batch size of every forward pass of the host's Wan DiT while the test runs."""
    import comfy.ldm.wan.model as wan

    batches: list[int] = []
    forward = wan.WanModel.forward

    def recording_forward(self, x, *args, **kwargs):
        batches.append(x.shape[0])
        return forward(self, x, *args, **kwargs)

    monkeypatch.setattr(wan.WanModel, "forward", recording_forward)
    return batches


def tiny_fast(shipped: dict, lora_strength: float = 1.0) -> dict:
    prompt = tiny_version(shipped)
    lora = _node_id(prompt, "LoraLoaderModelOnly")
    prompt[lora]["inputs"].update(lora_name=TINY_LORA, strength_model=lora_strength)
    sampler = _node_id(prompt, "EX4DWanSampler")
    prompt[sampler]["inputs"]["steps"] = shipped[sampler]["inputs"]["steps"]
    return prompt


def lora_targets(path: Path) -> set[str]:
    """The model weights a LoRA file patches: its names without the LoRA suffix."""
    targets = set()
    for key in load_file(str(path)):
        suffix = next(s for s in LORA_SUFFIXES if key.endswith(s))
        targets.add(key.removesuffix(suffix) + LORA_SUFFIXES[suffix])
    return targets


def test_fast_workflow_is_the_full_one_with_the_distillation_lora():
    full, fast = _shipped("ex4d_full"), _shipped("ex4d_fast")
    lora, ex4d_lora, sampler = (_node_id(fast, t) for t in ("LoraLoaderModelOnly", "EX4DLoRA", "EX4DWanSampler"))
    unet = _node_id(fast, "UNETLoader")
    assert fast[lora]["inputs"] == {"model": [unet, 0], "strength_model": 1.0,
                                    "lora_name": "lightx2v_I2V_14B_480p_cfg_step_distill_rank64_bf16.safetensors"}
    assert fast[ex4d_lora]["inputs"]["model"] == [lora, 0]  # the EX-4D LoRA stacks on the distilled model
    assert {k: fast[sampler]["inputs"][k] for k in ("steps", "cfg", "shift")} == {"steps": 4, "cfg": 1.0, "shift": 5.0}
    assert int(lora) == max(int(i) for i in full) + 1
    # EX-4D FP8 Linear on: the fast path is for the cards people own, where an fp8 file is what they load
    fp8, attention, apply = (_node_id(fast, t) for t in ("EX4DFP8Linear", "EX4DAttention", "EX4DApply"))
    assert fast[fp8]["inputs"] == {"model": [attention, 0]} and fast[apply]["inputs"]["model"] == [fp8, 0]
    rest = json.loads(json.dumps(fast))
    del rest[lora], rest[fp8]
    rest[ex4d_lora]["inputs"]["model"] = [unet, 0]
    rest[apply]["inputs"]["model"] = [attention, 0]
    rest[sampler]["inputs"].update(steps=25, cfg=5.0)
    assert rest == full, ("ex4d_fast differs from ex4d_full beyond the distillation LoRA, EX-4D FP8 Linear and the "
                          "sampler settings")


def test_fast_schedule_is_lightx2vs():
    """lightx2v samples its distilled model at timesteps 1000, 750, 500, 250 of its shifted 1000-step
    schedule; the Euler step it takes is the host's. The shipped steps and shift give the same sigmas."""
    shipped = _shipped("ex4d_fast")
    inputs = shipped[_node_id(shipped, "EX4DWanSampler")]["inputs"]
    training = torch.linspace(1.0, 0.0, 1001, dtype=torch.float64)[:-1]
    lightx2v = sampling.shift_sigmas(training[[1000 - t for t in LIGHTX2V_TIMESTEPS]], inputs["shift"])
    ours = sampling.flow_match_sigmas(inputs["steps"], inputs["shift"])
    torch.testing.assert_close(ours, torch.cat([lightx2v, lightx2v.new_zeros(1)]).float())


def test_fast_workflow_runs_one_positive_pass_a_step(fast_host, dit_batches):
    host = fast_host
    shipped = _shipped("ex4d_fast")
    outputs = host.run(tiny_fast(shipped))
    steps = shipped[_node_id(shipped, "EX4DWanSampler")]["inputs"]["steps"]
    assert dit_batches == [1] * steps, "CFG 1: one forward pass a step, on the positive prompt alone"
    latent = host.node_output(_node_id(shipped, "EX4DWanSampler"))[0][0]["samples"]
    assert latent.shape[:3] == (1, 16, 3) and torch.isfinite(latent).all()
    item = outputs[_node_id(shipped, "SaveVideo")]["images"][0]
    assert (host.output_dir / item["subfolder"] / item["filename"]).stat().st_size > 500


def test_distillation_lora_is_applied_under_the_ex4d_lora(fast_host):
    host = fast_host
    shipped = _shipped("ex4d_fast")
    sampler = _node_id(shipped, "EX4DWanSampler")
    host.run(tiny_fast(shipped))
    distilled = host.node_output(_node_id(shipped, "LoraLoaderModelOnly"))[0][0]
    assert set(distilled.patches) == lora_targets(host.models_dir / "loras" / TINY_LORA), (
        "the host did not map every weight of the lightx2v-style LoRA")
    stacked = host.node_output(_node_id(shipped, "EX4DLoRA"))[0][0].patches
    assert len(stacked["diffusion_model.blocks.0.self_attn.q.weight"]) == 2  # distillation + EX-4D
    with_lora = host.node_output(sampler)[0][0]["samples"]
    host.run(tiny_fast(shipped, lora_strength=0.0))
    without_lora = host.node_output(sampler)[0][0]["samples"]
    assert (with_lora - without_lora).abs().max() > 1e-3, "the distillation LoRA did not change the result"


def test_full_workflow_at_cfg_5_runs_positive_and_negative(fast_host, dit_batches):
    shipped = _shipped("ex4d_full")
    prompt = tiny_version(shipped)
    fast_host.run(prompt)
    steps = prompt[_node_id(shipped, "EX4DWanSampler")]["inputs"]["steps"]
    assert sum(dit_batches) == 2 * steps, "CFG 5: the positive and the negative prompt every step"
