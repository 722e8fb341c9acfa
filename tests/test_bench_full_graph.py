"""The whole-graph benchmark's graphs and bookkeeping (the runs themselves need a GPU: bench/gpu_budgets.sh)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

import bench_full_graph as bfg  # noqa: E402
import distill_lora  # noqa: E402
import full_graph_prompts  # noqa: E402

from harness.speed_nodes import SPEEDS, set_speed  # noqa: E402


def by_class(prompt: dict) -> dict[str, dict]:
    return {node["class_type"]: node for node in prompt.values()}


@pytest.mark.parametrize("weights", ["q8_0", "q4_k_m"])
def test_gguf_weights_load_through_comfyui_gguf_and_change_nothing_else(weights):
    gguf, fp8 = bfg.prompt_for(weights, "clip_0.mp4", 49), bfg.prompt_for("fp8", "clip_0.mp4", 49)
    loader_id = next(i for i, n in fp8.items() if n["class_type"] == "UNETLoader")
    assert gguf[loader_id] == {"class_type": "UnetLoaderGGUF", "inputs": {"unet_name": bfg.WAN_FILES[weights]}}
    assert not any(n["class_type"] == "UNETLoader" for n in gguf.values())
    assert {i: n for i, n in gguf.items() if i != loader_id} == {i: n for i, n in fp8.items() if i != loader_id}


def speed_chain(prompt: dict) -> list[str]:
    """The class types between EX-4D Attention and EX-4D Apply, in order."""
    chain, upstream = [], by_class(prompt)["EX4DApply"]["inputs"]["model"]
    while prompt[upstream[0]]["class_type"] != "EX4DAttention":
        chain.insert(0, prompt[upstream[0]]["class_type"])
        upstream = prompt[upstream[0]]["inputs"]["model"]
    return chain


@pytest.mark.parametrize("workflow", ["full", "fast"])
@pytest.mark.parametrize("speed", list(SPEEDS))
def test_a_speed_setting_is_exactly_the_speed_nodes_before_apply(workflow, speed):
    shipped = json.loads(full_graph_prompts.WORKFLOWS[workflow].read_text())
    prompt = json.loads(json.dumps(shipped))
    inserted = set_speed(prompt, speed)
    assert speed_chain(prompt) == list(SPEEDS[speed])
    assert {prompt[i]["class_type"] for i in inserted} == set(SPEEDS[speed]) - set(speed_chain(shipped))
    assert not set(inserted) & set(shipped)  # an id the workflow had is never given to another node
    kept = set(prompt) - set(inserted)
    assert all(prompt[i]["class_type"] == shipped[i]["class_type"] for i in kept)  # no id changes meaning
    assert set(shipped) - kept == {i for i, n in shipped.items() if n["class_type"] not in SPEEDS[speed]
                                   and n["class_type"] in SPEEDS["fp8+compile"]}
    as_shipped = "fp8" if workflow == "fast" else "none"
    assert (prompt == shipped) == (speed == as_shipped)


def test_an_unknown_speed_setting_is_named():
    with pytest.raises(ValueError, match="'fp9' is not a speed setting; use one of none, fp8, compile, fp8"):
        set_speed(json.loads(full_graph_prompts.WORKFLOWS["fast"].read_text()), "fp9")


def test_recipes_are_the_shipped_workflows_settings():
    fast = bfg.prompt_for("fp8", "clip_0.mp4", 49, workflow=bfg.RECIPES["fast"])
    published = bfg.prompt_for("fp8", "clip_0.mp4", 49, workflow=bfg.RECIPES["published"])
    assert bfg.sampler_settings(fast) == {"steps": 4, "cfg": 1.0}
    assert bfg.sampler_settings(published) == {"steps": 25, "cfg": 5.0}
    assert by_class(fast)["LoraLoaderModelOnly"]["inputs"]["lora_name"] == distill_lora.lora_file_name()
    assert "LoraLoaderModelOnly" not in by_class(published)
    steps = bfg.prompt_for("fp8", "clip_0.mp4", 49, workflow="fast", steps=2)
    assert bfg.sampler_settings(steps)["steps"] == 2


def test_time_split_accounts_for_every_second():
    per_node = {"3 EX4DEstimateDepth": 3.5, "2 EX4DDepthModelLoader": 0.25, "17 EX4DWanSampler": 7.0,
                "16 EX4DApply": 2.0, "6 EX4DRenderViews": 1.0, "18 VAEDecode": 0.75, "10 CLIPTextEncode": 0.5}
    split = bfg.time_split(per_node, {"sampler_first_step_s": 4.5})
    assert split == {"depth": 3.75, "sampler_first_step": 4.5, "sampler_later_steps": 2.5, "vae_encode": 2.0,
                     "other": 1.0, "vae_decode": 0.75, "encode": 0.5}
    assert sum(split.values()) == pytest.approx(sum(per_node.values()))


@pytest.mark.parametrize(("argv", "expected"), [
    (["--config", "budget24"], ("bf16", 24.0, False, "bf16/24G")),
    (["--config", "fp8"], ("fp8", None, True, "fp8+mm")),
    (["--weights", "q4_k_m", "--budget-gb", "12"], ("q4_k_m", 12.0, False, "q4_k_m/12G")),
])
def test_configurations(monkeypatch, argv, expected):
    monkeypatch.setattr(sys, "argv", ["bench_full_graph.py", "--models", "m", *argv])
    args = bfg.parse_args()
    assert (args.weights, args.budget_gb, args.fp8_matmul,
            bfg.config_name(args.weights, args.budget_gb, args.fp8_matmul)) == expected


def test_distill_lora_covers_every_linear_of_every_block():
    from full_weights import TINY

    layout = distill_lora.lora_layout(TINY, rank=4)
    linears = distill_lora.block_linears(TINY)
    assert len(layout) == TINY.layers * len(linears) * 3
    down = layout["diffusion_model.blocks.1.ffn.2.lora_down.weight"]
    up = layout["diffusion_model.blocks.1.ffn.2.lora_up.weight"]
    assert (down.shape, up.shape) == ((4, TINY.ffn), (TINY.dim, 4))


def test_residency_names_the_node_that_pushed_a_model_out():
    """From polled samples and the executor's stamps: the DiT whole when Estimate Depth starts, half gone at its
    end, back when the sampler ends; only Estimate Depth is named."""
    import residency

    gib = 1024**3
    r = residency.Residency(torch=None)
    r.samples = [(0.0, {"WAN21": 16 * gib}, 20 * gib), (1.0, {"WAN21": 16 * gib}, 20 * gib),
                 (1.5, {"WAN21": 8 * gib, "DepthCrafter": 4 * gib}, 23 * gib), (2.0, {"WAN21": 8 * gib}, 20 * gib),
                 (2.5, {"WAN21": 16 * gib}, 22 * gib), (3.0, {"WAN21": 16 * gib}, 22 * gib)]
    messages = [("executing", {"node": "1"}), ("executing", {"node": "2"}), ("executing", {"node": "3"}),
                ("executing", {"node": None})]
    report = r.by_node(messages, [0.0, 1.0, 2.0, 3.0], {"1": "EX4DLoadVideo", "2": "EX4DEstimateDepth",
                                                         "3": "EX4DWanSampler"}, ballast_bytes=2 * gib)
    assert report["2 EX4DEstimateDepth"]["models_gib"]["WAN21"] == [16.0, 8.0, 8.0]
    assert report["2 EX4DEstimateDepth"]["device_peak_gib"] == 21.0
    assert residency.evictions(report, "WAN21") == ["2 EX4DEstimateDepth -8.0 GiB"]
    assert residency.evictions(report, "DepthCrafter") == []


def test_residency_does_not_count_a_model_briefly_out_of_the_hosts_list():
    """When the sampler loads a new clone of the DiT the host drops the old one from its list for a moment: absent
    is not evicted."""
    import residency

    gib = 1024**3
    r = residency.Residency(torch=None)
    r.samples = [(0.0, {"WAN21": 16 * gib}, 0), (0.5, {}, 0), (1.0, {"WAN21": 16 * gib}, 0)]
    report = r.by_node([("executing", {"node": "17"}), ("executing", {"node": None})], [0.0, 1.0],
                       {"17": "EX4DWanSampler"})
    assert report["17 EX4DWanSampler"]["models_gib"]["WAN21"] == [16.0, 16.0, 16.0]
    assert residency.evictions(report, "WAN21") == []


def test_pollers_sample_until_the_block_ends(monkeypatch):
    import time
    import types

    import residency
    import timing

    monkeypatch.setattr(residency, "resident_bytes", lambda: {"WAN21": 1})  # no host here
    used = iter(range(1, 10**6))
    fake = types.SimpleNamespace(cuda=types.SimpleNamespace(mem_get_info=lambda: (100 - next(used) % 50, 100)))
    with timing.DevicePeak(fake, interval=0.001) as peak, residency.Residency(fake, interval=0.001) as res:
        time.sleep(0.05)
    count = len(res.samples)
    time.sleep(0.01)
    assert peak.peak > 1 and count > 3 and len(res.samples) == count  # stopped with the block


def test_compile_seconds_grow_with_a_compile():
    import torch

    before = bfg.compile_seconds()
    torch._dynamo.reset()
    torch.compile(lambda x: x.sin() * 2, backend="aot_eager")(torch.randn(8))
    after = bfg.compile_seconds()
    assert set(after) <= set(bfg.COMPILE_PHASES)
    assert after["_compile.compile_inner"] > before.get("_compile.compile_inner", 0.0)
    torch._dynamo.reset()
