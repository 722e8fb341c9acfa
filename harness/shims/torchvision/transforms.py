"""Placeholder submodule; see the package docstring."""


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    raise ImportError(f"torchvision.transforms.{name}: torchvision is not installed in this test environment")
