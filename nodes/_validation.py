"""The checks every node of the pack gets before its ``execute`` runs, read from the node's own schema: a link of
the input's kind where a link belongs, numbers finite and within the input's min and max, combo values among
the input's options. ``execute`` keeps the checks no schema can state: one input against another, a file's
contents, what a model is.

The host checks widget values when a prompt is queued, but not numbers that arrive through a link, values typed
into the prompt where a link belongs (it hands them on unchecked), V3 combo values before 0.33, nor anything when
a node is called in-process. Each refusal is a ValueError in the pack's form: "<input>: <what is wrong>; <what to
do>".

The inputs a node's own ``validate_inputs`` takes (file names, whose options a schema lists once while the folder
changes) are the node's to check, as the host leaves them to it at queue time too.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import comfy.clip_vision
import comfy.model_patcher
import comfy.sd
import torch
from comfy_api.latest import io

from ..ex4d.adapter import EX4DAdapter
from ..ex4d.camera import CameraPath
from ..ex4d.depth import DepthVideo
from ..ex4d.mesh import DWMesh, DWMeshSpec
from . import _types
from ._comfy import check_connected
from .depth_models import LoadedDepthModel


def _image_shape(image: torch.Tensor) -> str | None:
    if image.ndim != 4 or image.shape[-1] not in (3, 4):
        return f"got an IMAGE of shape {list(image.shape)}, not [frames, height, width, 3]"
    return None


def _mask_shape(mask: torch.Tensor) -> str | None:
    if mask.ndim not in (2, 3):
        return f"got a MASK of shape {list(mask.shape)}, not [frames, height, width]"
    return None


@dataclass(frozen=True)
class Link:
    """What a link of one socket type carries: its Python type(s), what to connect where a value is not one, and
    a check of its shape (the problem, or None)."""

    types: type | tuple[type, ...]
    connect: str
    shape: Callable[[Any], str | None] | None = None


@functools.cache
def links() -> dict[str, Link]:
    """The link checks by socket type (io_type)."""
    return {
        io.Model.io_type: Link(comfy.model_patcher.ModelPatcher, _types.CONNECT_MODEL),
        io.Vae.io_type: Link(comfy.sd.VAE, _types.CONNECT_VAE),
        io.Conditioning.io_type: Link(list, _types.CONNECT_CONDITIONING),
        io.Latent.io_type: Link(dict, _types.CONNECT_LATENT),
        io.ClipVisionOutput.io_type: Link(comfy.clip_vision.Output, _types.CONNECT_CLIP_VISION),
        io.Image.io_type: Link(torch.Tensor, _types.CONNECT_IMAGE, _image_shape),
        io.Mask.io_type: Link(torch.Tensor, _types.CONNECT_MASK, _mask_shape),
        _types.Depth.io_type: Link(DepthVideo, _types.CONNECT_DEPTH),
        _types.DWMesh.io_type: Link((DWMeshSpec, DWMesh), _types.CONNECT_MESH),
        _types.Camera.io_type: Link(CameraPath, _types.CONNECT_CAMERA),
        _types.Adapter.io_type: Link(EX4DAdapter, _types.CONNECT_ADAPTER),
        _types.DepthModel.io_type: Link(LoadedDepthModel, _types.CONNECT_DEPTH_MODEL),
    }


@dataclass(frozen=True)
class InputRule:
    """One schema input the base checks."""

    name: str
    io_type: str
    optional: bool
    options: tuple | None = None  # a combo's
    low: float | None = None  # a number's min
    high: float | None = None  # a number's max


NUMBER_TYPES = (io.Int.io_type, io.Float.io_type)

# input_rules by schema: the host runs each prompt's node on a fresh clone of its class, which shares the
# original's define_schema
_RULES: dict[Callable, tuple[InputRule, ...]] = {}


def input_rules(node: type[io.ComfyNode]) -> tuple[InputRule, ...]:
    """The inputs of ``node``'s schema that the base checks, read once per node class."""
    define_schema = getattr(node.define_schema, "__func__", node.define_schema)
    rules = _RULES.get(define_schema)
    if rules is None:
        own = set(inspect.signature(node.validate_inputs).parameters)
        checked = {*NUMBER_TYPES, io.Combo.io_type, *links()}
        rules = tuple(_input_rule(spec) for spec in node.define_schema().inputs
                      if spec.id not in own and spec.io_type in checked)
        _RULES[define_schema] = rules
    return rules


def _input_rule(spec: io.Input) -> InputRule:
    if spec.io_type in NUMBER_TYPES:
        return InputRule(spec.id, spec.io_type, bool(spec.optional), low=spec.min, high=spec.max)
    options = tuple(spec.options) if spec.io_type == io.Combo.io_type else None
    return InputRule(spec.id, spec.io_type, bool(spec.optional), options)


def check_inputs(node: type[io.ComfyNode], values: Mapping[str, object]) -> None:
    """Refuse, naming the input, the first of ``values`` (input name -> value; absent inputs are not checked)
    that ``node``'s schema does not allow."""
    for rule in input_rules(node):
        if rule.name not in values:
            continue
        value = values[rule.name]
        if rule.io_type in NUMBER_TYPES:
            _check_number(rule, value)
        elif rule.options is not None:
            _check_choice(rule, value)
        else:
            _check_link(node, rule, value)


def _check_choice(rule: InputRule, value: object) -> None:
    """Refuse a combo value that is not among the options. Hosts before 0.33 do not check V3 combo values at
    queue time, so an unknown value (a hand-edited or older workflow) ends here."""
    if value is None and rule.optional:
        return
    if value not in rule.options:
        raise ValueError(f"{rule.name}: unknown value '{value}'; choose one of {list(rule.options)}")


def _check_number(rule: InputRule, value: object) -> None:
    """Refuse what the host's own checks let through: a value that is no number (typed where a link belongs),
    NaN (every comparison with it is false, so it passes any min and max) and values that arrive through a link
    (the host checks the min and max of widget values only)."""
    if value is None and rule.optional:
        return
    low, high = rule.low, rule.high
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{rule.name}: got {value!r:.40}, not a number; give a value from {low} to {high}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{rule.name}: {value} is not a finite number; give a value from {low} to {high}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{rule.name}: {value} is out of range; give a value from {low} to {high}")


def _check_link(node: type[io.ComfyNode], rule: InputRule, value: object) -> None:
    link = links()[rule.io_type]
    connect = getattr(node, "what_to_connect", {}).get(rule.name, link.connect)
    check_connected(value, link.types, rule.name, connect, optional=rule.optional)
    problem = None if value is None or link.shape is None else link.shape(value)
    if problem is not None:
        raise ValueError(f"{rule.name}: {problem}; connect {connect}")


def _call_values(signature: inspect.Signature, args: tuple, kwargs: dict) -> dict[str, object] | None:
    """The inputs of one ``execute(cls, ...)`` call by name (its ``**`` inputs too), or None where the call does not
    fit the signature (``execute`` then raises its own TypeError)."""
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError:
        return None
    values = dict(list(bound.arguments.items())[1:])
    for name, parameter in signature.parameters.items():
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            values.update(values.pop(name, {}))
    return values


def checked(execute: Callable) -> Callable:
    """``execute`` (the function of a node's classmethod) running :func:`check_inputs` on its inputs first."""
    if inspect.iscoroutinefunction(execute):
        raise TypeError(f"{execute.__qualname__}: a checked node's execute must be synchronous")
    signature = inspect.signature(execute)

    @functools.wraps(execute)
    def checked_execute(cls, *args, **kwargs):
        values = _call_values(signature, (cls, *args), kwargs)
        if values is not None:
            check_inputs(cls, values)
        return execute(cls, *args, **kwargs)

    checked_execute.checks_inputs = True
    return checked_execute


class CheckedNode(io.ComfyNode):
    """A V3 node whose ``execute`` runs :func:`check_inputs` first; subclasses write ``execute`` as usual.

    ``what_to_connect`` names, per input, what to connect where a link's socket type alone says too little
    (``frames``: video frames, where the IMAGE type's text speaks of a rendered colour video)."""

    what_to_connect: ClassVar[dict[str, str]] = {}

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        execute = cls.__dict__.get("execute")
        # the host's per-prompt clone of a class copies its (already checked) execute
        if isinstance(execute, classmethod) and not getattr(execute.__func__, "checks_inputs", False):
            cls.execute = classmethod(checked(execute.__func__))
