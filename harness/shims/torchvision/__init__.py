"""Placeholder for torchvision on the CPU test machine.

ComfyUI 0.3.75 imports torchvision at start-up only for Stable Cascade's encoder, but PyPI's
torchvision wheels are CUDA builds that do not import beside the pinned CPU torch. This module lets
the host import; any real use of torchvision fails loudly. The harness puts it on the path only
when a real torchvision cannot be imported, and behind every other entry, so a real one wins.
"""

AVAILABLE = False


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    raise ImportError(
        f"torchvision.{name}: torchvision is not installed in this test environment "
        "(the harness only provides a placeholder so that ComfyUI can start)"
    )
