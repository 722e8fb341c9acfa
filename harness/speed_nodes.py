"""The pack's opt-in speed nodes in a workflow (API format): inserted, in order, between EX-4D Apply's model input
and what fed it. The whole-graph bench runs them this way; the UI workflows ship them there, bypassed."""

from __future__ import annotations

from typing import Any

# speed setting -> the speed nodes it inserts, in order
SPEEDS: dict[str, tuple[str, ...]] = {
    "none": (),
    "fp8": ("EX4DFP8Linear",),
    "compile": ("EX4DCompileBlocks",),
    "fp8+compile": ("EX4DFP8Linear", "EX4DCompileBlocks"),
}


def insert_speed(prompt: dict[str, Any], speed: str) -> list[str]:
    """Insert ``speed``'s nodes into ``prompt`` (in place) under the next free numeric ids; returns those ids."""
    apply = next(node for node in prompt.values() if node["class_type"] == "EX4DApply")
    upstream = apply["inputs"]["model"]
    next_id = max(int(node_id) for node_id in prompt if node_id.isdigit()) + 1
    added = []
    for class_type in SPEEDS[speed]:
        node_id = str(next_id + len(added))
        prompt[node_id] = {"class_type": class_type, "inputs": {"model": upstream}}
        upstream = [node_id, 0]
        added.append(node_id)
    apply["inputs"]["model"] = upstream
    return added
