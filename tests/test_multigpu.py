"""EX-4D under the host's MultiGPU CFG Split (ComfyUI 0.33: comfy_extras/nodes_multigpu.py, comfy/multigpu.py).

What the host does, and so what is tested here on the CPU:
- MultiGPU CFG Split (``MultiGPU_WorkUnits``) calls ``comfy.multigpu.create_multigpu_deepclones``: for every
  extra device from ``model_management.get_all_torch_devices()`` it builds a fresh BaseModel through the loader's
  ``cached_patcher_init`` (UNETLoader sets it) and ``ModelPatcher.clone(model_override=...)``, so the device clone
  gets the primary's weight patches (the EX-4D LoRA), object patches (the camera patch: the same object, by
  reference), model_options and callbacks. ``match_multigpu_clones`` redoes that from the primary at every
  ``prepare_sampling``, so patches added after the split node reach the clones too.
- At sampling, ``_calc_cond_batch_multigpu`` sends the cond and the uncond batch to different devices and runs
  each in a ``MultiGPUThreadPool`` worker thread: the one CameraEmbedding object is called from two threads.
- On a CPU-only host ``get_all_torch_devices()`` lists one device, so the node finds no extra device. The tests
  below list a second one, ``torch.device("cpu", 0)`` (a distinct dict key from ``torch.device("cpu")``, while
  tensors moved there are ordinary CPU tensors), which runs the host's real clone, load, thread-pool and
  scheduling code. What needs CUDA (two real devices, set_torch_device, the clone's weights on another GPU) is
  left to bench/bench_multigpu.py on a 2-GPU machine.
ComfyUI 0.3.75 has no multi-GPU code: the tests that need it skip there; the CameraEmbedding tests run on both.
"""

from __future__ import annotations

import sys
import threading

import pytest
import torch

from tests.test_wan_nodes import _apply, _clip_output, _inputs, _sample, _tiny_model, files, rel_err

__all__ = ["files"]  # the tiny models and clip of test_wan_nodes, as a fixture here too

SECOND = torch.device("cpu", 0)


def _patch_module(host, name: str = "camera_embedding"):
    return sys.modules[host.node_classes["EX4DApply"].__module__.rsplit(".", 1)[0] + "." + name]


def _camera(host, files, strength: float = 1.0):
    from ex4d.adapter import load_adapter

    adapter = load_adapter(host.models_dir / "ex4d" / "tiny_ex4d.ckpt")
    latents = torch.randn(1, 32, 3, 4, 4, generator=torch.Generator().manual_seed(1))
    return _patch_module(host).CameraEmbedding(adapter, latents, strength)


def test_camera_embedding_keeps_one_entry_per_device_and_dtype(host, files):
    """Two devices alternating (here cpu and meta) and two dtypes: computed once per key, kept until cleanup."""
    camera = _camera(host, files, strength=0.5)
    reference = camera.compute("cpu")
    calls = []
    real = camera.compute

    def counting(device="cpu", dtype=torch.float32):
        calls.append(torch.device(device))
        return real("cpu", dtype).to(device)  # the meta device cannot run the encoder; its result needs a device

    camera.compute = counting
    likes = [torch.zeros(1, device=d, dtype=t) for d in ("cpu", "meta") for t in (torch.float32, torch.bfloat16)]
    for _ in range(3):
        for like in likes:
            got = camera.get(like)
            assert (got.device, got.dtype) == (like.device, like.dtype)
    assert sorted(map(str, calls)) == ["cpu", "cpu", "meta", "meta"]
    assert set(camera.cached_keys()) == {(like.device, like.dtype) for like in likes}
    assert torch.equal(camera.get(likes[0]), reference)
    assert torch.equal(camera.get(likes[1]), reference.to(torch.bfloat16))
    camera.clear()
    assert camera.cached_keys() == []
    camera.get(likes[0])
    assert len(calls) == 5


def test_a_cleanup_during_a_computation_is_not_undone(host, files):
    """The host cleans the model up (clear) while a pass still computes the embedding: its result is returned
    to that pass but not cached past the cleanup."""
    camera = _camera(host, files)
    real = camera.compute

    def clearing(device="cpu", dtype=torch.float32):
        out = real(device, dtype)
        camera.clear()
        return out

    camera.compute = clearing
    assert camera.get(torch.zeros(1)).shape[1] > 0
    assert camera.cached_keys() == []


def test_camera_embedding_is_thread_safe_and_computes_keys_in_parallel(host, files):
    """Four threads per key, two keys: one computation per key, and the two keys compute at the same time (each
    computation waits until the other key's has started: a lock held during compute would deadlock here)."""
    camera = _camera(host, files)
    started = {torch.float32: threading.Event(), torch.float64: threading.Event()}
    calls = []
    real = camera.compute

    def compute_for(dtype):
        other = torch.float64 if dtype == torch.float32 else torch.float32

        def compute(device="cpu", out_dtype=torch.float32):
            calls.append(dtype)
            started[dtype].set()
            assert started[other].wait(10), "the other key's computation never started: compute is serialised"
            return real(device, out_dtype)

        return compute

    # the dtype of the caller's tensor picks the stand-in compute through a thread-local
    local = threading.local()
    camera.compute = lambda device="cpu", dtype=torch.float32: compute_for(local.dtype)(device, dtype)
    results, errors = [], []

    def worker(dtype):
        local.dtype = dtype
        try:
            results.append(camera.get(torch.zeros(1, dtype=dtype)))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(t,)) for t in (torch.float32, torch.float64) * 4]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert sorted(map(str, calls)) == ["torch.float32", "torch.float64"]
    assert len(results) == 8
    by_dtype = {}
    for r in results:
        by_dtype.setdefault(r.dtype, []).append(r)
    assert all(all(r is rs[0] for r in rs) for rs in by_dtype.values())  # every caller got the one cached tensor


# --- the host's multi-GPU code (ComfyUI 0.33) -------------------------------------------------------------


@pytest.fixture
def multigpu(host, monkeypatch):
    """The host's multi-GPU module with a second device listed (cpu:0); skips where the host has none."""
    if "MultiGPU_WorkUnits" not in host.node_classes:
        pytest.skip("this ComfyUI has no MultiGPU CFG Split node (comfy_extras/nodes_multigpu.py came after 0.3.75)")
    import comfy.model_management as mm
    import comfy.multigpu

    primary = mm.get_torch_device()
    assert primary.type == "cpu"
    monkeypatch.setattr(mm, "get_all_torch_devices", lambda exclude_current=False: [primary, SECOND])
    yield comfy.multigpu
    mm.unload_all_models()
    mm.free_memory(1e30, SECOND)


def _split(host, model, max_gpus: int = 2):
    with torch.inference_mode():
        (out,) = host.node_classes["MultiGPU_WorkUnits"].execute(model=model, max_gpus=max_gpus).args
    return out


def _clones(model) -> list:
    return model.get_additional_models_with_key("multigpu")


def _check_clone(host, primary, clone):
    wp = _patch_module(host)
    assert clone.load_device == SECOND and clone.is_multigpu_base_clone
    assert clone.model is not primary.model  # its own BaseModel, built again by the loader's factory
    # the EX-4D LoRA: the same host weight patches, the same patches_uuid (merged once per device)
    assert set(clone.patches) == set(primary.patches) and len(primary.patches) > 0
    assert clone.patches_uuid == primary.patches_uuid
    assert all(len(clone.patches[k]) == len(primary.patches[k]) for k in primary.patches)
    # the camera patch: bound to the clone's own patch embedding, sharing one CameraEmbedding (per-device cache)
    clone_patch, primary_patch = (m.object_patches[wp.PATCH_EMBED_FORWARD] for m in (clone, primary))
    assert clone_patch.camera is primary_patch.camera
    assert clone_patch.module is clone.model.diffusion_model.patch_embedding
    assert clone.model_options["transformer_options"][_patch_module(host, "ex4d_lora").LORA_MARK] == 1.0
    cleanup = clone.get_all_callbacks("on_cleanup")
    assert any(getattr(c, "__self__", None) is primary.object_patches[wp.PATCH_EMBED_FORWARD].camera for c in cleanup)


@pytest.mark.parametrize("split_first", [False, True], ids=["split-after-ex4d", "split-before-ex4d"])
def test_cfg_split_clones_carry_the_lora_and_the_camera_patch(host, files, multigpu, split_first):
    """EX-4D LoRA + Apply then CFG Split, or CFG Split first: every device's clone carries both patches (the
    second order through match_multigpu_clones, which the sampler runs in prepare_sampling)."""
    colour, mask, pos, neg = _inputs(host, files)
    model = _tiny_model(host)
    assert model.cached_patcher_init is not None  # UNETLoader's factory: what the device clones are built from
    if split_first:
        model = _split(host, model)
    out = _apply(host, model, colour, mask, pos, neg, clip_vision_output=_clip_output(3))
    patched = out[0]
    if split_first:
        patched.match_multigpu_clones()
    else:
        patched = _split(host, patched)
    (clone,) = _clones(patched)
    _check_clone(host, patched, clone)


def test_cfg_split_samples_as_one_device_with_one_camera_per_key(host, files, multigpu, monkeypatch):
    """One step through the host's multi-GPU sampler (cond and uncond in two worker threads on two model copies)
    gives the one-device result; the camera encoder runs once for the step's single (device, dtype) key."""
    wp = _patch_module(host)
    colour, mask, pos, neg = _inputs(host, files)
    base = _tiny_model(host)
    out = _apply(host, base, colour, mask, pos, neg, clip_vision_output=_clip_output(3))
    one = _sample(host, out, 1, 3.0)

    split = _split(host, out[0])
    (clone,) = _clones(split)
    calls = []
    real = wp.CameraEmbedding.compute

    def counting(self, device="cpu", dtype=torch.float32):
        calls.append(threading.get_ident())
        return real(self, device, dtype)

    monkeypatch.setattr(wp.CameraEmbedding, "compute", counting)
    forward_threads = []
    models_run = set()

    def record(module, args):
        forward_threads.append(threading.get_ident())
        models_run.add(id(module))

    for m in (split, clone):
        m.model.diffusion_model.register_forward_pre_hook(record)
    two = _sample(host, (split, *out[1:]), 1, 3.0)
    assert rel_err(two, one) < 1e-5
    assert models_run == {id(split.model.diffusion_model), id(clone.model.diffusion_model)}, "both must run"
    assert len(set(forward_threads)) == 2, "the host runs each device's pass in a worker thread of its own"
    assert len(calls) == 1  # one key (both fake devices hold CPU tensors): computed once, shared by the threads


def test_each_device_runs_its_own_patch_embedding(host, files, multigpu):
    wp = _patch_module(host)
    colour, mask, pos, neg = _inputs(host, files)
    out = _apply(host, _tiny_model(host), colour, mask, pos, neg, clip_vision_output=_clip_output(3))
    split = _split(host, out[0])
    split.match_multigpu_clones()  # as prepare_sampling does
    for patcher in (split, *_clones(split)):
        patch = patcher.object_patches[wp.PATCH_EMBED_FORWARD]
        assert patch.module is patcher.model.diffusion_model.patch_embedding, f"on {patcher.load_device}"


def test_fp8_linear_patches_follow_each_device_clone(host, files, multigpu, monkeypatch):
    """EX-4D FP8 Linear under CFG Split: each device's clone multiplies with its own layers (the patches are
    rebound on the host's device-clone callbacks), and one step equals the one-device fp8 step."""
    wp, bw = _patch_module(host, "speed"), _patch_module(host, "block_weights")
    colour, mask, pos, neg = _inputs(host, files)
    monkeypatch.setattr(bw.fp8, "can_run", lambda device, dtype: True)  # the CPU computes the quantized product, as a GPU would
    fast = wp.with_fp8_linear(_tiny_model(host))
    out = _apply(host, fast, colour, mask, pos, neg, clip_vision_output=_clip_output(3))
    one = _sample(host, out, 1, 3.0)
    split = _split(host, out[0])
    split.match_multigpu_clones()
    for patcher in (split, *_clones(split)):
        layers = bw.block_layers(patcher)
        patches = {k: p for k, p in patcher.object_patches.items() if bw.is_block_forward(p)}
        assert patches.keys() == layers.keys()
        assert all(p.__self__ is layers[k] for k, p in patches.items()), f"on {patcher.load_device}"
    two = _sample(host, (split, *out[1:]), 1, 3.0)
    assert rel_err(two, one) < 1e-5
