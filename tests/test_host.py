"""The pack inside the real ComfyUI host: loading, the executor, bad input, the server."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
import torch

from harness.bootstrap import REPO, missing_packages
from harness.host import NodeExecutionError, PromptValidationError, ServerHost
from harness.media import save_video

PACK_NODES = {"EX4DLoadVideo"}


def load_video_prompt(name: str, **overrides) -> dict:
    inputs = {"video": name, "frame_load_cap": 5, "skip_first_frames": 0, "select_every_nth": 1,
              "target_fps": 0.0, "resize": "published (multiple of 64, long side capped)",
              "max_resolution": 1024, "multiple": 64}
    inputs.update(overrides)
    return {"1": {"class_type": "EX4DLoadVideo", "inputs": inputs},
            "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}


@pytest.fixture(scope="module")
def clip_name(host):
    torch.manual_seed(0)
    save_video(torch.rand(9, 100, 150, 3), host.input_dir / "host_clip.mp4", fps=30)
    return "host_clip.mp4"


def test_pack_nodes_registered(host):
    assert PACK_NODES <= set(host.node_classes)


def test_load_video_through_executor(host, clip_name):
    outputs = host.run(load_video_prompt(clip_name, frame_load_cap=7))
    frames, fps, count = host.node_output("1")
    assert frames[0].shape == (7, 128, 128, 3)  # 150x100 -> published rounding -> 128x128
    assert fps[0] == pytest.approx(30.0)
    assert count[0] == 7
    assert len(outputs["2"]["images"]) == 7  # the stock preview node took our IMAGE


def test_missing_file_is_a_validation_error_naming_the_input(host):
    with pytest.raises(PromptValidationError) as e:
        host.run(load_video_prompt("does_not_exist.mp4"))
    assert "video" in str(e.value) and "does_not_exist.mp4" in str(e.value)


def test_path_outside_input_folder_is_refused(host, clip_name, tmp_path):
    outside = tmp_path / "outside.mp4"
    shutil.copy(host.input_dir / clip_name, outside)
    with pytest.raises(PromptValidationError) as e:
        host.run(load_video_prompt(f"../{outside.parent.name}/outside.mp4"))
    assert "outside" in str(e.value)


def test_not_a_video_is_a_node_error_and_host_keeps_working(host, clip_name):
    (host.input_dir / "fake.mp4").write_bytes(b"\x00garbage" * 100)
    with pytest.raises(NodeExecutionError) as e:
        host.run(load_video_prompt("fake.mp4"))
    assert "video:" in str(e.value) and "fake.mp4" in str(e.value)
    # zero frames selected
    with pytest.raises(NodeExecutionError, match="skip_first_frames: 500 skips all 9 frames of 'host_clip.mp4'"):
        host.run(load_video_prompt(clip_name, skip_first_frames=500))
    host.run(load_video_prompt(clip_name, frame_load_cap=2))
    assert host.node_output("1")[2][0] == 2


def test_progress_is_reported_and_cancel_stops_the_node(host, clip_name):
    host.run(load_video_prompt(clip_name, frame_load_cap=6))
    assert host.progress_values("1") == [1, 2, 3, 4, 5, 6]
    values = [e["value"] for e in host.events("progress") if e["node"] == "1"]
    assert values[-1] == 6 and values == sorted(values)  # what the UI got (0.33 throttles)

    with host.interrupt_when("1", at_value=2) as seen, pytest.raises(InterruptedError):
        host.run(load_video_prompt(clip_name, frame_load_cap=8, skip_first_frames=1))
    assert max(seen) < 8
    host.run(load_video_prompt(clip_name, frame_load_cap=3))  # the next prompt runs normally
    assert host.node_output("1")[2][0] == 3


def test_pack_import_is_cheap():
    """Loading the pack must not import the heavy optional libraries."""
    code = (
        "import sys, asyncio, importlib.util, pathlib\n"
        "from harness.bootstrap import prepare, shim_paths\n"
        "root = prepare(install_requirements=False); sys.path.insert(0, str(root)); sys.path += shim_paths()\n"
        "from comfy.cli_args import args; args.cpu = True\n"
        "import nodes\n"
        "link = root / 'custom_nodes' / 'ComfyUI-EX4D'\n"
        "ok = asyncio.run(nodes.load_custom_node(str(link)))\n"
        "heavy = [m for m in ('diffusers', 'nvdiffrast') if m in sys.modules]\n"
        "print('LOADED', ok, 'HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         cwd=str(REPO))
    assert "LOADED True HEAVY []" in out.stdout, out.stdout + out.stderr


@pytest.mark.server
def test_server_lists_pack_nodes_and_runs_prompt(tmp_path):
    with ServerHost(tmp_path) as server:
        info = server.get_json("/object_info")
        assert PACK_NODES <= set(info)
        spec = info["EX4DLoadVideo"]
        assert spec["category"] == "EX-4D"
        assert spec["output"] == ["IMAGE", "FLOAT", "INT"]
        torch.manual_seed(1)
        save_video(torch.rand(6, 64, 64, 3), tmp_path / "s.mp4", fps=30)
        assert server.upload(tmp_path / "s.mp4")["name"] == "s.mp4"  # the upload button's endpoint
        assert "s.mp4" in server.get_json("/object_info/EX4DLoadVideo")["EX4DLoadVideo"]["input"][
            "required"]["video"][1]["options"]
        bad = server.queue(load_video_prompt("missing.mp4"))
        assert bad.get("http_status") == 400 and "node_errors" in bad
        queued = server.queue(load_video_prompt("s.mp4", frame_load_cap=4))
        entry = server.wait(queued["prompt_id"], timeout=120)
        assert entry["status"]["status_str"] == "success", entry["status"]
        assert len(entry["outputs"]["2"]["images"]) == 4
        # the frontend extension is served
        assert b"EX-4D" in server.get("/extensions/ComfyUI-EX4D/ex4d.js")
        # nothing in the log that is not ours: no optional host module's traceback, no database noise
        assert "Traceback" not in server.log(), server.log()[-4000:]


def test_import_failures_of_the_hosts_own_modules_make_one_log_line(caplog):
    """What the host logs when optional modules fail to import (0.33, without a real torchvision): a traceback
    and a line each, then a notice. The harness shows one line instead; a custom node's failure stays whole."""
    import logging

    from harness.bootstrap import import_failures_in_one_line

    host_log = logging.getLogger()
    with caplog.at_level(logging.INFO), import_failures_in_one_line():
        for module in ("nodes_audio.py", "nodes_video_model.py"):
            host_log.warning("Traceback (most recent call last):\n  ...\nImportError: torchaudio")
            host_log.warning(f"Cannot import /host/comfy_extras/{module} module for custom nodes: torchaudio")
        host_log.warning("Traceback (most recent call last):\n  ...\nSyntaxError: a pack's own bug")
        host_log.warning("Cannot import /host/custom_nodes/SomePack module for custom nodes: a pack's own bug")
        host_log.info("Import times for custom nodes:")
        host_log.warning("WARNING: some comfy_extras/ nodes did not import correctly. This may be because ...")
        host_log.warning("IMPORT FAILED: nodes_audio.py")
        host_log.warning("")
        host_log.warning("Please do a: pip install -r requirements.txt")
        host_log.warning("an unrelated warning")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "Import times for custom nodes:",
        "Traceback (most recent call last):\n  ...\nSyntaxError: a pack's own bug",
        "Cannot import /host/custom_nodes/SomePack module for custom nodes: a pack's own bug",
        "an unrelated warning",
        "[ex4d harness] 2 optional host node modules did not import (nodes_audio.py, nodes_video_model.py); they "
        "need packages this environment lacks (such as torchvision, torchaudio) and EX-4D does not use them",
    ]


@pytest.mark.skipif(not missing_packages(), reason="a real torchvision and torchaudio import here")
def test_placeholder_packages_import_and_fail_only_when_used():
    """The harness's stand-ins for torchvision / torchaudio: every import form the hosts use succeeds, any
    use fails with ImportError, and hide_shims leaves no trace of them."""
    code = (
        "import sys\n"
        "from harness.bootstrap import SHIMS, hide_shims\n"
        "sys.path.append(str(SHIMS))\n"
        "import torchvision.transforms.functional as TVF\n"
        "from torchvision import transforms\n"
        "from torchvision.transforms.functional import InterpolationMode\n"
        "from torchaudio.transforms import MelScale\n"
        "import torchaudio\n"
        "mode = InterpolationMode.BILINEAR  # attribute chains resolve (used as defaults at import)\n"
        "for use in (lambda: TVF.resize(None, 4), lambda: transforms.Compose([]), lambda: MelScale()):\n"
        "    try:\n"
        "        use()\n"
        "    except ImportError as e:\n"
        "        print('FAILS', str(e).split(':')[0])\n"
        "hide_shims()\n"
        "import importlib.util\n"
        "print('GONE', importlib.util.find_spec('torchvision') is None, importlib.util.find_spec('torchaudio') is None,\n"
        "      [m for m in sys.modules if m.split('.')[0] in ('torchvision', 'torchaudio')])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=str(REPO))
    assert out.stdout.splitlines() == [
        "FAILS torchvision.transforms.functional.resize",
        "FAILS torchvision.transforms.Compose",
        "FAILS torchaudio.transforms.MelScale",
        "GONE True True []",
    ], out.stdout + out.stderr
