"""``python -m harness.serve [main.py arguments]``: the host's ``main.py`` as a server, set up as
:class:`harness.host.InProcessHost` sets the host up: the placeholder packages (on ``PYTHONPATH`` where
needed: :class:`harness.host.ServerHost` puts them there) are gone once the host has imported its nodes, so
that libraries probing for torchvision (transformers among them) see none, as in a virtual environment without
it; and the host's optional modules that fail to import are named in one log line instead of a traceback each.
Run with the host's folder as the working directory."""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import runpy
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from harness.bootstrap import hide_shims, import_failures_in_one_line


def _quiet_then_hidden(init: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def init_extra_nodes(*args, **kwargs):
        with import_failures_in_one_line():
            failed = await init(*args, **kwargs)
        hide_shims()
        return failed

    return init_extra_nodes


class _WrapInitExtraNodes(importlib.abc.MetaPathFinder):
    """Wraps the host's ``nodes.init_extra_nodes`` once main.py has imported ``nodes`` (not before: main.py
    parses the command line before it imports anything that reads it)."""

    def find_spec(self, fullname, path, target=None):
        if fullname != "nodes":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        run = spec.loader.exec_module

        def exec_module(module) -> None:
            run(module)
            module.init_extra_nodes = _quiet_then_hidden(module.init_extra_nodes)

        spec.loader.exec_module = exec_module
        return spec


def main() -> None:
    root = Path.cwd()  # the host's folder (not host_dir(): EX4D_HOST may be relative to the checkout)
    sys.meta_path.insert(0, _WrapInitExtraNodes())
    sys.argv = [str(root / "main.py"), *sys.argv[1:]]
    runpy.run_path(str(root / "main.py"), run_name="__main__")


if __name__ == "__main__":
    main()
