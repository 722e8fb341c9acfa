"""The camera editor's server state: the scenes camera nodes made, kept in memory and served by the pack's
routes (:mod:`._routes`), and the key that finds a scene by what it was made from (:func:`source_key`).

Prompts run on the host's worker thread while the routes answer on the server's event loop, so the cache is
locked.
"""

from __future__ import annotations

import hashlib
import json
import numbers
import threading
from collections import OrderedDict
from collections.abc import Mapping


class SceneCache:
    """The editor's scenes (``GET /ex4d/camera/scene/<key>``): nothing is written to disk, so a prompt that fails
    later leaves no file behind. Keyed by content; the ``capacity`` newest are kept (about 0.7 MB each).

    Each scene is also remembered under the *source* it was made from (:func:`source_key`: the nodes that feed
    the camera node's depth and frames, as queued), so the editor's "load scene" action finds it for any camera
    node on the same depth later (``POST /ex4d/camera/scene``), e.g. after the page was reloaded."""

    def __init__(self, capacity: int = 16):
        self.capacity = capacity
        self._scenes: OrderedDict[str, bytes] = OrderedDict()
        self._sources: OrderedDict[str, dict] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, data: bytes) -> str:
        key = hashlib.sha1(data).hexdigest()[:20]
        with self._lock:
            self._scenes[key] = data
            self._scenes.move_to_end(key)
            while len(self._scenes) > self.capacity:
                self._scenes.popitem(last=False)
        return key

    def get(self, key: str) -> bytes | None:
        with self._lock:
            return self._scenes.get(key)

    def remember(self, source: str, entry: dict) -> None:
        with self._lock:
            self._sources[source] = entry
            self._sources.move_to_end(source)
            while len(self._sources) > self.capacity:
                self._sources.popitem(last=False)

    def of_source(self, source: str) -> dict | None:
        with self._lock:
            entry = self._sources.get(source)
            return entry if entry is not None and entry["scene"] in self._scenes else None


SCENES = SceneCache()


def host_node_classes() -> Mapping[str, type]:
    """The host's node classes by class type: the registry its executor looks up every prompt's nodes in.
    The executor's module holds the host's ``nodes`` module; imported by that bare name from here, it could be
    this pack's own ``nodes`` package instead."""
    import execution

    return execution.nodes.NODE_CLASS_MAPPINGS


def declared_inputs(class_type: object) -> set[str] | None:
    """The inputs a node class declares: a page's prompt also holds the values of its display widgets (e.g. a
    video preview's), which the queued prompt may lack. None (keep every input) for a class the host does not
    know."""
    node_class = host_node_classes().get(class_type) if isinstance(class_type, str) else None
    if node_class is None:
        return None
    spec = node_class.INPUT_TYPES()
    return {name for group in ("required", "optional") for name in spec.get(group, {})}


def source_key(prompt: object, node_id: object) -> str | None:
    """What a camera node's scene is made from, as a key: the nodes upstream of its ``depth`` and ``frames``
    inputs in an API prompt (class types and widget values; node ids left out, so the same graph queued again,
    or sent by the editor from the page, gives the same key). None when the node or its depth link is missing."""
    if not isinstance(prompt, dict) or not isinstance(prompt.get(str(node_id)), dict):
        return None
    memo: dict[str, object] = {}

    def signature(link: object, seen: frozenset) -> object:
        if not (isinstance(link, list) and len(link) == 2 and str(link[0]) in prompt):
            if isinstance(link, numbers.Real) and not isinstance(link, bool):
                return float(link)  # the page writes 0 where the queued prompt had 0.0
            return link  # a widget value
        upstream = str(link[0])
        if upstream in seen:
            return None
        if upstream not in memo:
            node = prompt[upstream] if isinstance(prompt[upstream], dict) else {}
            inputs = node.get("inputs") if isinstance(node.get("inputs"), dict) else {}
            names = declared_inputs(node.get("class_type"))
            memo[upstream] = [node.get("class_type"), sorted((k, signature(v, seen | {upstream}))
                                                             for k, v in inputs.items() if names is None or k in names)]
        return [memo[upstream], link[1]]

    inputs = prompt[str(node_id)].get("inputs")
    if not isinstance(inputs, dict) or not isinstance(inputs.get("depth"), list):
        return None
    parts = [signature(inputs.get(name), frozenset({str(node_id)})) for name in ("depth", "frames")]
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=repr).encode()).hexdigest()[:20]
