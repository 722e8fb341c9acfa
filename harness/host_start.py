"""The host's start-up as its main.py does it: the command-line args, then dynamic VRAM."""

from __future__ import annotations

import sys


def parse_host_args(host_args: tuple[str, ...]):
    """The host's ``args``: its defaults, or ``host_args`` parsed by its own parser (as main.py's command
    line would be); must run before any other comfy module is imported."""
    import comfy.options

    if host_args:
        comfy.options.enable_args_parsing()
        saved, sys.argv = sys.argv, ["main.py", *host_args]
        try:
            from comfy.cli_args import args
        finally:
            sys.argv = saved
    from comfy.cli_args import args

    return args


def start_dynamic_vram(args) -> bool:
    """Dynamic VRAM as the host's main.py starts it (0.33 on, NVIDIA, unless flags turn it off): comfy-aimdo
    loaded before the comfy modules that use it import, then set up on each device, and the dynamic model
    patcher for every model loaded afterwards. False where the host has none (0.3.75) or leaves it off."""
    import comfy.cli_args

    enables = getattr(comfy.cli_args, "enables_dynamic_vram", None)
    if enables is None or not enables():
        return False
    import comfy_aimdo.control

    headroom = None if args.reserve_vram is None else int(args.reserve_vram * 1024**3)
    if not comfy_aimdo.control.init(simple_vram_headroom=headroom, nvml_pressure=not args.disable_nvml_pressure):
        return False
    import comfy.memory_management
    import comfy.model_management as mm
    import comfy.model_patcher

    if not (mm.is_nvidia() and mm.torch_version_numeric >= (2, 8)):
        return False
    devices = [(d.index, int(args.vram_headroom * 1024**3)) for d in mm.get_all_torch_devices()]
    if not comfy_aimdo.control.init_devices(devices):
        return False
    comfy.model_patcher.CoreModelPatcher = comfy.model_patcher.ModelPatcherDynamic
    comfy.memory_management.aimdo_enabled = True
    return True
