"""The Wan 2.1 VAE encodes of EX-4D Apply (colour, mask, and WanImageToVideo's start video), one video per call of
the host's VAE.encode, as EX-4D Apply makes them, against the same videos as one batch given to the VAE's encoder,
side by side in one process. The VAE is the host's, loaded from a file through its loader (``comfy.sd.VAE``), on
the host's dynamic VRAM where it has it.

    python bench/bench_vae_encode.py --comfyui DIR --vae models/vae/wan_2.1_vae.safetensors
                                     [--frames 49] [--size 512] [--out bench/results/vae_encode.jsonl]

Each figure is the best of three timed calls after one untimed call. ``max rel diff``: the largest difference of a
batched video's latents from the same video's latents alone, over the largest latent.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ is not a package: its modules import each other

import arguments  # noqa: E402
import torch  # noqa: E402
from records import Column, append_records, print_table  # noqa: E402
from timing import Gpu, best_seconds  # noqa: E402
from wan_model import host_version, setup_host  # noqa: E402

COLUMNS = (
    Column("how", 26, lambda r: r["how"]),
    Column("videos", 7, lambda r: r["videos"], "d", ">"),
    Column("seconds", 8, lambda r: r["seconds"], ".3f", ">"),
    Column("s/video", 8, lambda r: r["seconds"] / r["videos"], ".3f", ">"),
    Column("max rel diff", 13, lambda r: r.get("max_rel_diff"), ".1e", ">"),
)


def main() -> None:
    ap = arguments.parser(__doc__)
    arguments.add_comfyui(ap)
    ap.add_argument("--vae", required=True, help="a Wan 2.1 VAE file (bench/full_weights.py writes one)")
    ap.add_argument("--frames", type=int, default=49)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--repeat", type=int, default=3)
    arguments.add_results(ap, table=False)
    args = ap.parse_args()
    gpu = Gpu(torch)
    host_root = Path(args.comfyui).resolve()
    dynamic = setup_host(host_root, None, cpu=not gpu.cuda, dynamic_vram=gpu.cuda)
    import comfy.model_management
    import comfy.sd
    import comfy.utils

    vae = comfy.sd.VAE(sd=comfy.utils.load_torch_file(args.vae))
    gen = torch.Generator().manual_seed(0)
    videos = torch.rand(3, args.frames, args.size, args.size, 3, generator=gen) * 2 - 1  # the VAE's [-1, 1] space

    def one_by_one(batch: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return torch.cat([vae.encode((video + 1) / 2) for video in batch])

    def batched(batch: torch.Tensor) -> torch.Tensor:
        comfy.model_management.load_models_gpu([vae.patcher])  # as VAE.encode does before it calls the encoder
        pixels = batch.movedim(-1, 1).to(vae.device, vae.vae_dtype)
        with torch.no_grad():
            return vae.first_stage_model.encode(pixels).float().cpu()

    base = {"device": gpu.name(), "host": host_version(host_root), "dynamic_vram": dynamic,
            "vae_dtype": str(vae.vae_dtype).removeprefix("torch."), "frames": args.frames,
            "width": args.size, "height": args.size}
    rows = []
    for count in (1, 2, 3):
        alone = one_by_one(videos[:count])
        rows.append({**base, "how": "host VAE.encode, one each", "videos": count,
                     "seconds": best_seconds(lambda c=count: one_by_one(videos[:c]), gpu, args.repeat)})
        if count > 1:
            together = batched(videos[:count])
            rows.append({**base, "how": "encoder, one batch", "videos": count,
                         "seconds": best_seconds(lambda c=count: batched(videos[:c]), gpu, args.repeat),
                         "max_rel_diff": float((together - alone).abs().max() / alone.abs().max())})
    print(f"# {gpu.name()}, torch {torch.__version__}, host {base['host']} (dynamic VRAM {dynamic}), "
          f"VAE in {base['vae_dtype']}, {args.frames} frames of {args.size} x {args.size}")
    print_table(COLUMNS, rows, " ")
    append_records(args.out, rows)


if __name__ == "__main__":
    main()
