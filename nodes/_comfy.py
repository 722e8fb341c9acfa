"""ComfyUI glue shared by the pack's nodes: model folders, safe input paths, progress and cancel, out of
memory."""

from __future__ import annotations

import contextlib
import logging
import os
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import comfy.model_management
import comfy.utils
import folder_paths
import torch

from ..ex4d.runtime import Cancelled

CATEGORY = "EX-4D"
T = TypeVar("T")

# Pack-specific model folders (name -> extensions). Wan files stay in the stock folders.
MODEL_FOLDERS: dict[str, set[str]] = {
    "ex4d": {".ckpt", ".pt", ".pth", ".safetensors"},
    "depthcrafter": {"folder"},
    "depth_anything": {"folder"},
}


def register_model_folders() -> None:
    """Add ``models/ex4d`` etc. to the host's folder registry, keeping paths users configured."""
    for name, extensions in MODEL_FOLDERS.items():
        default = os.path.join(folder_paths.models_dir, name)
        if name in folder_paths.folder_names_and_paths:
            paths, exts = folder_paths.folder_names_and_paths[name]
            if default not in paths:
                paths.append(default)
            folder_paths.folder_names_and_paths[name] = (paths, set(exts) | extensions)
        else:
            folder_paths.folder_names_and_paths[name] = ([default], set(extensions))


def model_folder_paths(name: str) -> list[str]:
    """The folders of one of the pack's model types (registering them if the host has not yet)."""
    if name not in folder_paths.folder_names_and_paths:
        register_model_folders()
    return folder_paths.get_folder_paths(name)


def input_files(content_type: str | None = None, extensions: tuple[str, ...] = ()) -> list[str]:
    """Files in ComfyUI's input folder of one content type ("video", "image", ...) or with one of
    ``extensions``, sorted."""
    input_dir = folder_paths.get_input_directory()
    if not os.path.isdir(input_dir):
        return []
    files = [f for f in os.listdir(input_dir) if os.path.isfile(os.path.join(input_dir, f))]
    if content_type:
        files = folder_paths.filter_files_content_types(files, [content_type])
    if extensions:
        files = [f for f in files if f.lower().endswith(extensions)]
    return sorted(files)


# Longest folder or file name a prefix may hold: most file systems stop at 255 bytes, and the host appends
# a counter and the extension.
MAX_PREFIX_PART_BYTES = 200


def check_output_prefix(filename_prefix: str | None, input_name: str = "filename_prefix") -> bool | str:
    """``validate_inputs`` form of the checks of :func:`output_path`: True, or the error text. None (a link,
    or no value: the host reports that itself) passes; :func:`output_path` checks it when the node runs."""
    if filename_prefix is None:
        return True
    if "\x00" in filename_prefix:
        return f"{input_name}: contains a null character; use letters, digits, '-', '_' and '/'"
    output_dir = os.path.abspath(folder_paths.get_output_directory())
    folder = os.path.abspath(os.path.join(output_dir, os.path.dirname(os.path.normpath(filename_prefix))))
    if os.path.commonpath((output_dir, folder)) != output_dir:
        return (f"{input_name}: '{filename_prefix}' leaves ComfyUI's output folder; use a relative name such "
                "as 'ex4d/result'")
    if any(len(part.encode()) > MAX_PREFIX_PART_BYTES for part in Path(filename_prefix).parts):
        return f"{input_name}: a folder or file name in it is longer than {MAX_PREFIX_PART_BYTES} bytes; shorten it"
    return True


def output_path(filename_prefix: str, extension: str, width: int = 0, height: int = 0) -> tuple[Path, str]:
    """A new numbered file under ComfyUI's output folder: (absolute path, path relative to output).

    Refuses prefixes that leave the output folder or that no file system takes (:func:`check_output_prefix`)."""
    problem = check_output_prefix(filename_prefix)
    if problem is not True:
        raise ValueError(problem)
    output_dir = folder_paths.get_output_directory()
    folder, name, counter, subfolder, _ = folder_paths.get_save_image_path(filename_prefix, output_dir, width,
                                                                           height)
    os.makedirs(folder, exist_ok=True)
    filename = f"{name}_{counter:05}_.{extension}"
    relative = os.path.join(subfolder, filename) if subfolder else filename
    return Path(folder) / filename, relative


def check_file_name(name: object, input_name: str) -> None:
    """Refuse a value that is not a file name (a number typed into the prompt), naming the input."""
    if not isinstance(name, str):
        raise ValueError(f"{input_name}: expected a file name, got {name!r}; choose a file from the list")


def resolve_input_file(name: str, input_name: str) -> Path:
    """The path of an input-folder file chosen in a widget; refuses anything outside that folder."""
    check_file_name(name, input_name)
    if not name:
        raise ValueError(f"{input_name}: no file chosen; upload one or put it in ComfyUI's input folder")
    if "\x00" in name:
        raise ValueError(f"{input_name}: the file name contains a null character; choose a file from the list")
    outside = f"{input_name}: '{name}' lies outside ComfyUI's input folder; choose a file inside it"
    try:
        path = Path(folder_paths.get_annotated_filepath(name)).resolve()
    except ValueError:  # hosts from 0.33 on refuse a name that leaves its folder themselves
        raise ValueError(outside) from None
    folders = {t: Path(folder_paths.get_directory_by_type(t) or "").resolve() for t in ("input", "output", "temp")}
    # "name [output]" / "name [temp]" pick a file of a previous run in the output / temp folder
    kind = next((t for t in ("output", "temp") if name.endswith(f"[{t}]")), "input")
    roots = list(folders.values()) if kind != "input" else [folders["input"]]
    if not any(path.is_relative_to(root) for root in roots):
        raise ValueError(outside)
    if not path.is_file():
        raise ValueError(f"{input_name}: '{name}' was not found in ComfyUI's {kind} folder ({folders[kind]}); "
                         "upload it or choose another file")
    return path


def check_file(resolve: Callable[[str], Path | str], name: str | None) -> bool | str:
    """``validate_inputs`` form of a file resolver (it raises ValueError naming its input): True, or the error
    text. None (a link, or no value: the host reports that itself) passes; the node resolves it when it runs."""
    if name is None:
        return True
    try:
        resolve(name)
    except ValueError as e:
        return str(e)
    return True


def check_input_file(name: str | None, input_name: str, extensions: tuple[str, ...] = (),
                     wrong_kind: str = "") -> bool | str:
    """:func:`check_file` of a file in the input folder (:func:`resolve_input_file`); with ``extensions``, a file
    of another kind is refused as "<input_name>: '<name>' <wrong_kind>"."""
    ok = check_file(lambda n: resolve_input_file(n, input_name), name)
    if ok is True and name is not None and extensions and not name.lower().endswith(extensions):
        return f"{input_name}: '{name}' {wrong_kind}"
    return ok


def file_fingerprint(resolve: Callable[[str], Path | str], name: str) -> str:
    """``fingerprint_inputs`` of a node reading a file: changes when the file does ("missing" if absent)."""
    try:
        stat = os.stat(resolve(name))
    except (ValueError, OSError):
        return "missing"
    return f"{stat.st_mtime_ns}:{stat.st_size}"


def input_file_fingerprint(name: str, input_name: str) -> str:
    """:func:`file_fingerprint` of a file in the input folder."""
    return file_fingerprint(lambda n: resolve_input_file(n, input_name), name)


def check_connected(value: object, kind: type | tuple[type, ...], input_name: str, connect: str,
                    optional: bool = False) -> None:
    """Refuse a value typed into the prompt where a link belongs (the host hands it on to the node unchecked),
    or None for a required input, naming the input; ``connect`` says what to connect. An ``optional`` input
    left unconnected (None) passes."""
    if not isinstance(value, kind) and not (optional and value is None):
        raise ValueError(f"{input_name}: got {value!r:.40}, not a link; connect {connect}")


def device_memory(device) -> int | None:
    """Bytes of ``device`` that models and work may use: its total less the host's reserve (``--reserve-vram``);
    None for the CPU, whose limit is the system's, not an estimate of ours."""
    mm = comfy.model_management
    if mm.is_device_cpu(device):
        return None
    return mm.get_total_memory(device) - mm.extra_reserved_memory()


def check_fits(memory_required: int, weights: int, device, what: str, change: str) -> None:
    """Refuse, before any model moves, work that ``device`` cannot hold even with every other model offloaded:
    ``weights`` plus ``memory_required`` (the stage's own estimate of its peak) beyond :func:`device_memory`.
    ``what`` says what needs it, ``change`` names the input to change and how."""
    available = device_memory(device)
    if available is not None and weights + memory_required > available:
        raise ValueError(f"{what} needs about {(weights + memory_required) / 2**30:.1f} GiB "
                         f"({memory_required / 2**30:.1f} GiB beside {weights / 2**30:.1f} GiB of weights) and this "
                         f"GPU has {available / 2**30:.1f} GiB for it; {change}")


def make_room(memory_required: int, device) -> None:
    """Free device memory for work that is not a model (a render) the way ``load_models_gpu`` does for a
    model's inference memory: the host's own reserve (``--reserve-vram``) on top, models offloaded as needed."""
    mm = comfy.model_management
    # The allocator's cached blocks count as free to the host, but after sampling they are fragments a render's
    # large buffers cannot use: hand them back first, so what the host frees is what the render can have.
    mm.soft_empty_cache()
    # 1.1: the margin load_models_gpu adds to what a model needs
    needed = memory_required * 1.1 + mm.extra_reserved_memory()
    mm.free_memory(max(mm.minimum_inference_memory(), needed), device)


class Progress:
    """A node's progress bar, as the ``progress(done, total)`` callable the library accepts."""

    def __init__(self, total: int):
        self.bar = comfy.utils.ProgressBar(max(int(total), 1))

    def __call__(self, done: int, total: int | None = None, preview: torch.Tensor | None = None) -> None:
        """``preview``: an optional [H, W, 3] image in [0, 1] shown on the node while it runs."""
        image = None
        if preview is not None:
            from comfy.cli_args import args
            from PIL import Image

            pixels = (preview[..., :3].float().clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
            image = ("JPEG", Image.fromarray(pixels), args.preview_size)
        self.bar.update_absolute(done, total if total else None, image)


def cancel_requested() -> bool:
    """The library's ``cancel()`` (:mod:`ex4d.runtime`): True once the user pressed Cancel. The stages ask it
    at every step themselves: hosts from 0.33 on throttle the progress hook, where their own check lives."""
    return comfy.model_management.processing_interrupted()


@contextlib.contextmanager
def library_stage(out_of_memory_message: str | None = None) -> Iterator[None]:
    """Run a library stage under the host's rules: its :class:`~ex4d.runtime.Cancelled` becomes the host's
    interrupt (the prompt ends as cancelled, not failed), and running out of GPU memory the host's own
    out-of-memory type with ``out_of_memory_message`` (see :func:`reraise_out_of_memory`), when given."""
    with reraise_out_of_memory(out_of_memory_message) if out_of_memory_message else contextlib.nullcontext():
        try:
            yield
        except Cancelled:
            comfy.model_management.throw_exception_if_processing_interrupted()
            raise


def _out_of_memory_types() -> tuple[type[BaseException], ...]:
    """The exception types the host's own out-of-memory test looks at: ``OOM_EXCEPTION`` (torch's CUDA
    OutOfMemoryError), and from 0.33 on also ``ACCELERATOR_ERROR`` (torch.AcceleratorError), which is out of
    memory only for some error codes."""
    mm = comfy.model_management
    accelerator = getattr(mm, "ACCELERATOR_ERROR", None)
    return (mm.OOM_EXCEPTION,) if accelerator is None else (mm.OOM_EXCEPTION, accelerator)


def _is_out_of_memory(e: BaseException) -> bool:
    is_oom = getattr(comfy.model_management, "is_oom", None)  # 0.33 on; before, the type alone decides
    return is_oom is None or bool(is_oom(e))


def run_making_room(work: Callable[[], T], memory_required: int, device, out_of_memory_message: str) -> T:
    """Run ``work``, a library stage that uses no model, after :func:`make_room` for ``memory_required``.

    An estimate cannot foresee every scene: should the stage still run out of memory, every model is offloaded
    (as the host's own VAE decode falls back to tiles) and it runs once more; running out again is the host's
    out-of-memory error with ``out_of_memory_message``. Cancel is the host's interrupt either way."""
    make_room(memory_required, device)
    try:
        with library_stage():
            return work()
    except _out_of_memory_types() as e:
        if not _is_out_of_memory(e):
            raise
        traceback.clear_frames(e.__traceback__)  # its buffers go before the second try
    logging.warning("EX-4D: out of GPU memory with models loaded; offloading them and trying once more")
    comfy.model_management.unload_all_models()
    comfy.model_management.soft_empty_cache()
    with library_stage(out_of_memory_message):
        return work()


@contextlib.contextmanager
def reraise_out_of_memory(message: str) -> Iterator[None]:
    """Re-raise running out of GPU memory inside the block as the host's own OOM type with ``message`` (say
    which input to lower), chained to the original.

    The host frees its loaded models after a node fails only when it recognises the exception as out of
    memory (0.3.75: ``isinstance(ex, OOM_EXCEPTION)``, 0.33: ``is_oom(ex)``); any other type leaves every
    model loaded and the next prompt fails too."""
    try:
        yield
    except _out_of_memory_types() as e:
        if not _is_out_of_memory(e):
            raise
        # The failed stage's frames hold its device buffers (gigabytes for a render chunk) for as long as the
        # traceback lives, which the host's clean-up after an out-of-memory error does not reach: free them now.
        traceback.clear_frames(e.__traceback__)
        raise comfy.model_management.OOM_EXCEPTION(message) from e


def model_files(folder: str) -> list[str]:
    """The files of one of the host's model folders, or none where the host has no such folder."""
    try:
        return folder_paths.get_filename_list(folder)
    except (KeyError, FileNotFoundError):
        return []
