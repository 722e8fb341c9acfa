"""The benchmarks' shared command-line arguments: the results file, the host folder, the models folder."""

from __future__ import annotations

import argparse
import os


def parser(doc: str | None) -> argparse.ArgumentParser:
    """A bench's parser, its module docstring as the description (as written: it holds the command lines)."""
    return argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


def add_results(p: argparse.ArgumentParser, table: bool = True) -> None:
    """``--out`` (JSON lines appended) and, with ``table``, ``--table`` (print a results file instead of running)."""
    p.add_argument("--out", help="append one JSON line per run to this file")
    if table:
        p.add_argument("--table", help="print the table of a results file and exit")


def add_comfyui(p: argparse.ArgumentParser, note: str = "") -> None:
    p.add_argument("--comfyui", default=os.environ.get("COMFYUI_PATH"),
                   help=f"host folder (or env COMFYUI_PATH){note}")


def add_models(p: argparse.ArgumentParser, written_here: bool = True) -> None:
    """``--models``: the folder a writer of random files writes into (required), or the one a bench reads."""
    if written_here:
        p.add_argument("--models", required=True, help="the ComfyUI models folder to write into")
    else:
        p.add_argument("--models", help="models folder written by bench/full_weights.py")


def add_scale(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scale", choices=("full", "tiny"), default="full")


def require(p: argparse.ArgumentParser, args: argparse.Namespace, given: bool, what: str) -> None:
    """Stop with ``what`` unless ``given`` or a ``--table`` run, which needs nothing else."""
    if not args.table and not given:
        p.error(f"{what} (or --table FILE)")


def require_comfyui(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if not args.comfyui:
        p.error("give the ComfyUI folder with --comfyui or COMFYUI_PATH")
