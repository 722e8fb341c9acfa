"""The folders a test host works in: input, output, temp and user under ``work_dir``, and the model folders
(``work_dir/models/<folder>``) through an extra_model_paths.yaml, so tests and the demo never touch the host's
own tree."""

from __future__ import annotations

from pathlib import Path

# Model folders of the host that the pack's workflows use, plus the pack's own.
MODEL_FOLDERS = (
    "diffusion_models",
    "vae",
    "text_encoders",
    "clip_vision",
    "loras",
    "checkpoints",
    "ex4d",
    "depthcrafter",
    "depth_anything",
)


def write_model_paths_yaml(work_dir: Path) -> Path:
    models = work_dir / "models"
    lines = ["ex4d_harness:", f"  base_path: {models}", "  is_default: true"]
    for name in MODEL_FOLDERS:
        (models / name).mkdir(parents=True, exist_ok=True)
        lines.append(f"  {name}: {name}")
    path = work_dir / "extra_model_paths.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def work_dirs(work_dir: Path) -> dict[str, Path]:
    dirs = {name: work_dir / name for name in ("input", "output", "temp", "user")}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    return dirs
