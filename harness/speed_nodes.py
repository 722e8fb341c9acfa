"""The pack's opt-in speed nodes in a workflow (API format), in order between EX-4D Apply's model input and what fed
it. The whole-graph bench sets them per run; the UI workflows ship those their API twin lacks there, bypassed."""

from __future__ import annotations

from typing import Any

# speed setting -> the speed nodes before EX-4D Apply, in order
SPEEDS: dict[str, tuple[str, ...]] = {
    "none": (),
    "fp8": ("EX4DFP8Linear",),
    "compile": ("EX4DCompileBlocks",),
    "fp8+compile": ("EX4DFP8Linear", "EX4DCompileBlocks"),
}
SPEED_NODES = frozenset(SPEEDS["fp8+compile"])


def set_speed(prompt: dict[str, Any], speed: str) -> list[str]:
    """Make the speed nodes right before EX-4D Apply in ``prompt`` (in place) exactly ``speed``'s: those it lists
    and the prompt has keep their ids and inputs, the others are taken out, the missing ones are inserted under ids
    the prompt never used. Returns the inserted ids."""
    if speed not in SPEEDS:
        raise ValueError(f"speed: {speed!r} is not a speed setting; use one of {', '.join(SPEEDS)}")
    apply = next(node for node in prompt.values() if node["class_type"] == "EX4DApply")
    next_id = max(int(node_id) for node_id in prompt if node_id.isdigit()) + 1
    present: dict[str, str] = {}  # class type -> node id, of the speed nodes feeding EX-4D Apply
    upstream = apply["inputs"]["model"]
    while prompt[upstream[0]]["class_type"] in SPEED_NODES:
        present[prompt[upstream[0]]["class_type"]] = upstream[0]
        upstream = prompt[upstream[0]]["inputs"]["model"]
    for class_type, node_id in present.items():
        if class_type not in SPEEDS[speed]:
            del prompt[node_id]
    inserted = []
    for class_type in SPEEDS[speed]:
        node_id = present.get(class_type)
        if node_id is None:
            node_id = str(next_id + len(inserted))
            prompt[node_id] = {"class_type": class_type, "inputs": {}}
            inserted.append(node_id)
        prompt[node_id]["inputs"]["model"] = upstream
        upstream = [node_id, 0]
    apply["inputs"]["model"] = upstream
    return inserted
