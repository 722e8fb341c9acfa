"""The main job: run the example workflow end to end inside the real ComfyUI host.

    ./dev demo                         # workflows/api/ex4d_example_api.json on the bundled clip
    ./dev demo --workflow FILE.json    # any API-format workflow of the pack

Outputs land in ``out/demo/output``; the log says which files were written.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from harness.bootstrap import REPO
from harness.host import InProcessHost

EXAMPLE_INPUTS = REPO / "assets" / "example"
DEFAULT_WORKFLOW = REPO / "workflows" / "api" / "ex4d_example_api.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workflow", type=Path, default=DEFAULT_WORKFLOW)
    parser.add_argument("--work-dir", type=Path, default=REPO / "out" / "demo")
    args = parser.parse_args()

    host = InProcessHost(args.work_dir).start()
    for f in EXAMPLE_INPUTS.glob("*"):
        if f.is_file():
            shutil.copy(f, host.input_dir / f.name)
    prompt = json.loads(args.workflow.read_text())
    t0 = time.perf_counter()
    outputs = host.run(prompt)
    seconds = time.perf_counter() - t0
    print(f"[ex4d demo] {args.workflow.name}: {len(prompt)} nodes ran in {seconds:.1f} s")
    for node_id, ui in outputs.items():
        title = f"node {node_id} ({prompt[node_id]['class_type']})"
        for kind, items in ui.items():
            items = items if isinstance(items, list) else []
            files = [i for i in items if isinstance(i, dict) and "filename" in i]
            texts = [i for i in items if isinstance(i, str)]
            for item in files[:1]:
                folder = host.output_dir if item.get("type") == "output" else host.work_dir / "temp"
                more = f" (+{len(files) - 1} more)" if len(files) > 1 else ""
                print(f"  {title} {kind}: {folder / item.get('subfolder', '') / item['filename']}{more}")
            for text in texts[:1]:
                print(f"  {title} {kind}: {host.output_dir / text}")

if __name__ == "__main__":
    main()
