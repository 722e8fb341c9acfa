"""EX-4D FP8 Linear's fused weight quantizer at a start of ComfyUI: how many graphs it compiles for the Wan 14B DiT's
block weight shapes after ``ex4d.fp8.can_run``'s probe, and how long those compiles take, with a square probe (as
before) and with ``ex4d.fp8.probe_inputs``, side by side: each in a fresh process, as at a start of ComfyUI, compiling
into a folder of its own, new unless ``--cache DIR`` names one kept from an earlier run (a warm start).

    python bench/bench_fp8_quantizer.py [--cache DIR] [--out bench/results/fp8_quantizer.jsonl]
    python bench/bench_fp8_quantizer.py --table bench/results/fp8_quantizer.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ is not a package: its modules import each other

import arguments  # noqa: E402
import torch  # noqa: E402
from records import Column, Record, append_records, print_table, read_records  # noqa: E402

from ex4d import fp8  # noqa: E402

# the Wan 2.1 14B blocks' Linear weights: attention q k v o (and I2V's k_img v_img), the FFN's two
WAN_14B_WEIGHTS = ((5120, 5120), (13824, 5120), (5120, 13824))
PROBES = {
    "square 16x16": lambda device: (torch.ones(16, 16, device=device, dtype=torch.bfloat16),) * 2
    + (torch.ones(16, device=device, dtype=torch.bfloat16),),
    "probe_inputs": fp8.probe_inputs,
}


def one_start(probe: str, device: torch.device) -> Record:
    """The probe's product, then one weight of each shape, as FP8 Linear quantizes them at a run's start."""
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    fp8._fused_quantize_rows.cache_clear()
    start = time.perf_counter()
    fp8.scaled_linear(*PROBES[probe](device))
    torch.cuda.synchronize(device)
    seconds = {"probe": time.perf_counter() - start}
    for shape in WAN_14B_WEIGHTS:
        weight = torch.randn(shape, device=device, dtype=torch.bfloat16)
        torch.cuda.synchronize(device)
        start = time.perf_counter()
        fp8.quantize_weight(weight)
        torch.cuda.synchronize(device)
        seconds["x".join(map(str, shape))] = time.perf_counter() - start
    return {"device": torch.cuda.get_device_name(device), "torch": torch.__version__, "probe": probe,
            "graphs": counters["stats"]["unique_graphs"], "fxgraph_cache_hit": counters["inductor"]["fxgraph_cache_hit"],
            "first_call_s": {k: round(v, 3) for k, v in seconds.items()},
            "total_s": round(sum(seconds.values()), 2)}


COLUMNS = [
    Column("device", 24, lambda r: r["device"][:23]),
    Column("probe", 14, lambda r: r["probe"]),
    Column("graphs", 7, lambda r: r["graphs"], align=">"),
    Column(" cache hits", 12, lambda r: r["fxgraph_cache_hit"], align=">"),
    Column("  total s", 10, lambda r: r["total_s"], ".2f", ">"),
    Column("  first call per shape, s", 60, lambda r: "  " + ", ".join(f"{k} {v}" for k, v in r["first_call_s"].items())),
]


def main() -> None:
    p = arguments.parser(__doc__)
    arguments.add_results(p)
    p.add_argument("--cache", help="a folder whose per-setting compile caches are kept between runs")
    p.add_argument("--probe", choices=sorted(PROBES), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.table:
        print_table(COLUMNS, read_records(args.table))
        return
    if not torch.cuda.is_available():
        raise SystemExit("this benchmark needs a CUDA GPU")
    if args.probe:  # one start, in this process
        print(json.dumps(one_start(args.probe, torch.device("cuda"))))
        return
    root = Path(args.cache or tempfile.mkdtemp(prefix="ex4d-fp8-quantizer-"))
    records = []
    for probe in PROBES:
        env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(root / probe.split()[0])}
        env.pop("TRITON_CACHE_DIR", None)
        out = subprocess.run([sys.executable, __file__, "--probe", probe], env=env, capture_output=True, text=True,
                             check=True)
        record = json.loads(out.stdout.strip().splitlines()[-1])
        append_records(args.out, [record])
        records.append(record)
    print_table(COLUMNS, records)


if __name__ == "__main__":
    main()
