"""What makes an error message clear: it names the one input it is about first ("video: ..."), says what to
do, and holds no raw Python exception text. The host's own queue-time checks (range, choices, link types) are
clear by construction: the host attaches them to the input and states the limit."""

from __future__ import annotations

import re

from harness.bootstrap import host_dir

# Text that only a Python exception carries, never a message written for a user.
RAW_EXCEPTION_TEXT = (
    "Traceback",
    "Error:",  # "KeyError: ...", "ValueError: ...": an exception printed with its type
    "KeyError",
    "IndexError",
    "AttributeError",
    "TypeError",
    "ZeroDivisionError",
    "could not convert",
    "BadZipFile",
    "File is not a zip file",
    "slice step cannot be zero",
    "embedded null byte",
    "[Errno",
    "invalid literal for",
    "object has no attribute",
    "NoneType",
    "not subscriptable",
    "unsupported operand",
    "unexpected keyword argument",
    "argument after",
    "positional argument",
    "allow_pickle",
    "while decompressing",
    "(char ",  # json.JSONDecodeError's position
    "cannot convert float NaN",
    "tuple index out of range",
    "list index out of range",
)
# A message says what to do: an instruction, or what the input must be.
ACTION = re.compile(
    r"\b(choose|use|set|lower|raise|connect|disconnect|upload|put|fix|make|load|re-?export|re-?encode|save|"
    r"pick|refresh|download|give|shorten|rebuild|estimate|resize|move|enter|install|plug|remove|must|needs?)\b"
)
# The host's own queue-time checks: it attaches them to the input and states the limit or the choices.
HOST_CHECKS = {
    "value_smaller_than_min",
    "value_bigger_than_max",
    "value_not_in_list",
    "return_type_mismatch",
    "required_input_missing",
    "invalid_input_type",
    "bad_linked_input",
}
# Queue-time error types that mean the pack's own validation broke.
VALIDATION_CRASHES = {"exception_during_validation", "exception_during_inner_validation"}
# Exception types a node may fail with on bad input: anything else escaped unhandled.
EXPECTED_EXCEPTIONS = {"ValueError"}


def host_checks_v3_combos() -> bool:
    """Whether the host refuses unknown V3 combo values at queue time (0.33 on); before, they reach the node.
    (False where the host is not set up yet: nothing runs on it then.)"""
    execution = host_dir() / "execution.py"
    return execution.is_file() and "io.Combo.io_type" in execution.read_text()


def message_problems(text: str, input_name: str) -> list[str]:
    """Why ``text`` is not a clear message about ``input_name`` ([] when it is)."""
    problems = []
    if not text.startswith(f"{input_name}:"):
        problems.append(f"does not start with '{input_name}:'")
    raw = [r for r in RAW_EXCEPTION_TEXT if r in text]
    if raw:
        problems.append(f"holds raw exception text {raw}")
    if not ACTION.search(text):
        problems.append("does not say what to do")
    return problems
