"""Shared fixtures: one in-process ComfyUI host per session, the browser tests' frontend, the bad-input suites'
server, tiny-model files, GPU marker."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from harness.frontend import NO_FIRST_RUN, RENDERERS, Frontend  # noqa: E402


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="module", params=list(RENDERERS))
def ui(request, server):
    """The real frontend in headless Chromium, in each node renderer, on the browser test module's own ``server``
    (one per module, shared by both renderers' pages: a server start takes about 10 s on two cores). Each
    renderer's tests start on a freed server, so the prompts they queue run afresh."""
    server.free()
    with Frontend(server, {**NO_FIRST_RUN, **RENDERERS[request.param]}) as frontend:
        yield frontend


@pytest.fixture(scope="session")
def bad_input_server(host, tmp_path_factory):
    """The real server with the pack, a 5-frame clip, broken and good input files, and tiny models, shared by the
    bad-input and fuzz suites (a server start takes about 10 s on two cores; each case must leave it serving the
    next anyway). The in-process ``host`` makes the host's modules importable for the tiny Wan files."""
    from harness.host import ServerHost
    from tests.bad_inputs import prepare_work_dir

    work = tmp_path_factory.mktemp("bad_inputs")
    prepare_work_dir(work)
    with ServerHost(work) as server:
        yield server


@pytest.fixture(scope="session")
def host(tmp_path_factory):
    """The real ComfyUI 0.3.75 host with the pack loaded, executing prompts in this process."""
    from harness.host import InProcessHost

    return InProcessHost(tmp_path_factory.mktemp("comfy")).start()
