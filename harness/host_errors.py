"""How a prompt failed in the host: refused by its validation, or raised by a node."""

from __future__ import annotations

import json
from typing import Any


class NodeExecutionError(RuntimeError):
    """A prompt failed inside the host; ``details`` is the host's execution_error message."""

    def __init__(self, details: dict[str, Any]):
        self.details = details
        super().__init__(
            f"{details.get('node_type')} (node {details.get('node_id')}): "
            f"{details.get('exception_type')}: {details.get('exception_message')}"
        )


class PromptValidationError(RuntimeError):
    def __init__(self, error: dict[str, Any], node_errors: dict[str, Any]):
        self.error = error
        self.node_errors = node_errors
        super().__init__(f"{error.get('message')}: {json.dumps(node_errors)[:2000]}")
