"""Checking a model folder against the files a model needs, and which weights variant it holds."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

DIFFUSERS_WEIGHTS = (
    "diffusion_pytorch_model.safetensors",
    "diffusion_pytorch_model.fp16.safetensors",
    "diffusion_pytorch_model.bin",
    "diffusion_pytorch_model.fp16.bin",
)
TRANSFORMERS_WEIGHTS = (
    "model.safetensors",
    "model.fp16.safetensors",
    "pytorch_model.bin",
    "pytorch_model.fp16.bin",
)

# A folder layout: each entry a path relative to the folder, and the alternatives any one of which satisfies it.
Layout = tuple[tuple[str, tuple[str, ...]], ...]


@dataclass
class FolderCheck:
    """Result of checking a model folder: ``ok`` and, when not, a message naming every missing file."""

    folder: Path
    missing: list[str] = field(default_factory=list)
    what: str = "model"
    layout_doc: str = ""

    @property
    def ok(self) -> bool:
        return not self.missing

    def __bool__(self) -> bool:
        return self.ok

    @property
    def message(self) -> str:
        if self.ok:
            return f"{self.what} folder {self.folder} is complete"
        lines = [f"{self.what} folder {self.folder} is missing {len(self.missing)} file(s):"]
        lines += [f"  - {m}" for m in self.missing]
        if self.layout_doc:
            lines.append(self.layout_doc)
        return "\n".join(lines)


def _first_existing(folder: Path, rel: str, alternatives: tuple[str, ...]) -> Path | None:
    path = folder / rel
    if path.is_file():
        return path
    for alt in alternatives:
        cand = path.parent / alt
        if cand.is_file():
            return cand
    return None


def check_layout(folder: str | Path, layout: Layout, what: str, layout_doc: str = "") -> FolderCheck:
    folder = Path(folder)
    missing = []
    for rel, alts in layout:
        if _first_existing(folder, rel, alts) is None:
            extra = f" (or {', '.join(a for a in alts if a != Path(rel).name)})" if alts else ""
            missing.append(rel + extra)
    return FolderCheck(folder, missing, what, layout_doc)


def weights_variant(component_dir: Path, names: tuple[str, ...]) -> str | None:
    """'fp16' when only the fp16 variant of the weights is there (what the published code loads)."""
    plain = [n for n in names if ".fp16." not in n]
    if any((component_dir / n).is_file() for n in plain):
        return None
    if any((component_dir / n).is_file() for n in names if ".fp16." in n):
        return "fp16"
    return None
