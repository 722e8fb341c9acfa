"""The whole-graph benchmark's results table (``bench_full_graph.py --table``): one row per run, its error and the
nodes that pushed models off the device under it."""

from __future__ import annotations

from typing import Any

from records import Column, print_table


def _config(r: dict[str, Any]) -> str:
    return r["config"] if r.get("workflow", "full") == "full" else f"{r['config']}/{r['frames']}f"


def _run(r: dict[str, Any]) -> str:
    fast_or_25 = r.get("steps", 25) in (25, None) or r.get("recipe", "published") == "fast"
    run = r["run"] if fast_or_25 else f"{r['run']} ({r['steps']} steps)"
    compiled = "compile" in r.get("speed", "none")
    return f"{run}, {r['compile_cache']} cache" if compiled and r.get("compile_cache") in ("empty", "warm") else run


COLUMNS = (
    Column("host", 8, lambda r: r["host"]),
    Column("config", 16, _config),
    Column("recipe", 10, lambda r: r.get("recipe", "published")),
    Column("attn", 6, lambda r: r.get("attention", "host")),
    Column("speed", 12, lambda r: r.get("speed", "none")),
    Column("raster", 11, lambda r: r.get("rasteriser", "torch")),
    Column("run", 24, _run),
    Column("ok", 4, lambda r: "yes" if r["completed"] else "NO", align=">"),
    Column("wall s", 8, lambda r: r["wall_s"], ".1f", ">"),
    Column("alloc", 7, lambda r: r["peak_alloc_gib"], ".1f", ">"),
    Column("reserv", 7, lambda r: r["peak_reserved_gib"], ".1f", ">"),
    Column("device", 7, lambda r: r["peak_device_gib"], ".1f", ">"),
    Column("budget", 7, lambda r: r.get("budget_gib") or None, "g", ">"),
    Column("1st", 6, lambda r: r.get("sampler_first_step_s"), ".1f", ">"),
    Column("step", 6, lambda r: r.get("sampler_step_median_s"), ".2f", ">"),
    Column("  where the time goes (s)", 0, lambda r: "  " + _where(r)),
)


def _below(r: dict[str, Any]) -> list[str]:
    """Under a row: its error, and the nodes that pushed models off the device (``residency``)."""
    error = r.get("error")
    lines = [f"{'':<76}error: {error['exception_type']}: {error['message'][:160]!r}"] if error else []
    lines += [f"{'':<76}{model} pushed out by: {', '.join(nodes)}" for model, nodes in r.get("evicted", {}).items()]
    return lines


def print_runs(results: list[dict[str, Any]]) -> None:
    print_table(COLUMNS, results, rule=40, below=_below)
    if results:
        print(f"device: {results[-1]['device']}; alloc / reserv = torch's allocator peaks, device = peak in use on the "
              "GPU (all allocators, polled every 20 ms); GiB. 1st = EX-4D Wan Sampler's start to its first step's end "
              "(loading and weight patching included), step = median of the later steps (a CFG step: cond + uncond "
              "at CFG > 1, cond alone at CFG 1); s")


def _where(r: dict[str, Any]) -> str:
    """The run's time by stage (rows with a split), else its slowest nodes."""
    split = r.get("time_split_s")
    if split:
        return ", ".join(f"{stage} {s:.1f}" for stage, s in sorted(split.items(), key=lambda kv: -kv[1]) if s >= 0.05)
    nodes = sorted(r["per_node_s"].items(), key=lambda kv: -kv[1])[:4]
    return ", ".join(f"{name.split(' ', 1)[1]} {s:.1f}" for name, s in nodes)
