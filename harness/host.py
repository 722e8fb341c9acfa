"""The real ComfyUI host, driven two ways: in-process through its executor, or as a server.

    host = InProcessHost(work_dir).start()
    outputs = host.run(prompt)            # API-format prompt -> {node_id: ui outputs}

    with ServerHost(work_dir) as server:  # python main.py --cpu on 127.0.0.1, free port
        server.get_json("/object_info")

Both point the host's input, output, temp and user folders and its model folders at ``work_dir``
(models under ``work_dir/models/<folder>``), so tests and the demo never touch the host's own tree.

One module per job: :mod:`harness.in_process_host`, :mod:`harness.server_host`, :mod:`harness.host_folders`
(the work folders), :mod:`harness.host_start` (args and dynamic VRAM as main.py starts them),
:mod:`harness.host_errors`; the names below are their public face.
"""

from __future__ import annotations

import logging
from pathlib import Path

from harness.bootstrap import host_dir
from harness.host_errors import NodeExecutionError, PromptValidationError
from harness.host_folders import MODEL_FOLDERS
from harness.host_start import start_dynamic_vram
from harness.in_process_host import InProcessHost
from harness.server_host import ServerHost, free_port

__all__ = ["MODEL_FOLDERS", "InProcessHost", "NodeExecutionError", "PromptValidationError", "ServerHost",
           "free_port", "host_root", "start_dynamic_vram"]


def host_root() -> Path:
    return host_dir()


logging.getLogger("harness").addHandler(logging.NullHandler())
