"""Bad input against the real server (issue #12: every bad input gets one clear error).

    marker = prepare_work_dir(work)                        # a clip, input files broken in every way, tiny models
    with ServerHost(work) as server:
        graphs = Graphs(server.get_json("/object_info"), SOURCES, WIDGETS)
        node = graphs.node("EX4DLoadVideo", video="../x.mp4")  # valid inputs but one
        reply = submit(server, Graphs.prompt(node, base_nodes(graphs)))
    reply.stage, reply.errors                              # "queue" / "run" / "accepted" / "crash", what came back
    message_problems(reply.errors[0].text, "video")        # [] when the message is clear

One module per job: :mod:`.messages` (what a clear message is), :mod:`.replies` (what the server answered),
:mod:`.graphs` (prompts from the host's node list), :mod:`.files` (the work folder), :mod:`.clip` (its fixed
names); the names below are their public face.
"""

from .clip import ANYTHING, CLIP, MARKER, H, T, W
from .files import CodeRunner, check_code_runner, prepare_work_dir
from .graphs import DROP, SOURCES, WIDGETS, Graphs, base_nodes
from .messages import HOST_CHECKS, host_checks_v3_combos, message_problems
from .replies import Error, Reply, serving, submit, written_files

__all__ = ["ANYTHING", "CLIP", "DROP", "HOST_CHECKS", "MARKER", "SOURCES", "WIDGETS", "CodeRunner", "Error",
           "Graphs", "H", "Reply", "T", "W", "base_nodes", "check_code_runner", "host_checks_v3_combos",
           "message_problems", "prepare_work_dir", "serving", "submit", "written_files"]
