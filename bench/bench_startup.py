"""Host start time with and without the pack, measured side by side (alternating runs).

    .venv/bin/python bench/bench_startup.py [--runs 3]

Start time = from spawning ``main.py --cpu`` until ``/system_stats`` answers.
"""

from __future__ import annotations

import re
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ is not a package: its modules import each other

import arguments  # noqa: E402
from records import Column, print_table  # noqa: E402

from harness.host import ServerHost  # noqa: E402

COLUMNS = (
    Column("host start (s)", 22, lambda r: r["label"]),
    Column("median", 8, lambda r: statistics.median(r["s"]), ".2f", ">"),
    Column("min", 8, lambda r: min(r["s"]), ".2f", ">"),
    Column("max", 8, lambda r: max(r["s"]), ".2f", ">"),
)


def main() -> None:
    parser = arguments.parser(__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    times: dict[str, list[float]] = {"without pack": [], "with pack": []}
    pack_import: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            for label, pack in (("without pack", False), ("with pack", True)):
                server = ServerHost(Path(tmp) / f"{i}-{pack}", pack=pack).start()
                times[label].append(server.startup_seconds)
                log = server.log()
                server.stop()
                if pack:
                    m = re.search(r"([\d.]+) seconds(?: \(IMPORT FAILED\))?: .*ComfyUI-EX4D", log)
                    if m:
                        pack_import.append(float(m.group(1)))
    print_table(COLUMNS, [{"label": label, "s": values} for label, values in times.items()], rule=None)
    diff = statistics.median(times["with pack"]) - statistics.median(times["without pack"])
    print(f"{'difference':<22}{diff:8.2f}   (goal: < 1.0 s)")
    if pack_import:
        print(f"{'pack import (host log)':<22}{statistics.median(pack_import):8.2f}")


if __name__ == "__main__":
    main()
