"""Write the UI-format twin of every ``workflows/api/*_api.json`` through the real frontend.

    .venv/bin/python scripts/make_ui_workflows.py [name ...]   (e.g. ex4d_full; default: all)

The frontend itself maps API inputs to widgets (``app.loadApiJson``) and serialises the graph, so the
UI files are exactly what a user would get by dropping the API file onto the canvas and saving. A workflow
that generates (it has EX-4D Apply) also gets the speed nodes its API twin lacks before EX-4D Apply (EX-4D FP8
Linear, EX-4D Compile Blocks), bypassed: the user turns them on with Ctrl+B, and queued as shipped the graph is its
API twin.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from harness.frontend import Frontend  # noqa: E402
from harness.host import ServerHost  # noqa: E402
from harness.speed_nodes import set_speed  # noqa: E402


def ui_name(api_path: Path) -> Path:
    # UI workflows sit in workflows/ (the hosts list that folder as templates), API twins below it
    return api_path.parent.parent / api_path.name.replace("_api.json", ".json")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, ServerHost(Path(tmp)) as server, Frontend(server) as ui:
        for api_path in sorted((REPO / "workflows" / "api").glob("*_api.json")):
            if sys.argv[1:] and api_path.name.removesuffix("_api.json") not in sys.argv[1:]:
                continue
            prompt = json.loads(api_path.read_text())
            speed_nodes = set_speed(prompt, "fp8+compile") if any(
                node["class_type"] == "EX4DApply" for node in prompt.values()) else []
            ui.load_api(prompt)
            ui.bypass(speed_nodes)
            ui.arrange()
            workflow = ui.serialize()
            if len(workflow["nodes"]) != len(prompt):  # the page was not ready
                raise SystemExit(f"{api_path.name}: the frontend loaded {len(workflow['nodes'])} nodes; run again")
            ui_name(api_path).write_text(json.dumps(workflow, indent=2) + "\n")
            print(f"wrote {ui_name(api_path).relative_to(REPO)} ({len(workflow['nodes'])} nodes)")


if __name__ == "__main__":
    main()
