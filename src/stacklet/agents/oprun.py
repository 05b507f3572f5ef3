"""Run one command of ``stacklet.ops`` for the MCP server, in its own process, and print its JSON envelope.

The request comes on stdin as ``{"op": NAME, "args": {...}, "context", "host", "stack", "advertise"}``; the
answer is one JSON document on stdout and the command's exit code. A process of its own per call
lets a cancelled or timed-out tool call interrupt the command (SIGINT), which then cleans up as on
Ctrl-C, without touching the server.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from pydantic import ValidationError, validate_call

from stacklet.checks.verdict import Verdict
from stacklet.errors import ConfigError, StackletError, UnexpectedError
from stacklet.ops.commands import TOOLS
from stacklet.ops.results import DoctorResult, Envelope, error_envelope
from stacklet.ops.session import Session

OPERATIONS = {op.__name__: op for op in TOOLS}


def run(request: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """The JSON document and exit code of one command."""
    session = Session(context=request.get("context"), host=request.get("host"), default_stack=request.get("stack"),
                      advertise=request.get("advertise"))
    op = OPERATIONS.get(request.get("op", ""))
    if op is None:
        return error_envelope(ConfigError(f"no command {request.get('op')!r}",
                                          hint=f"one of: {', '.join(OPERATIONS)}")), 3
    try:
        result = validate_call(config={"arbitrary_types_allowed": True})(op)(session, **request.get("args", {}))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return error_envelope(ConfigError(first.get("msg", "invalid argument"), key=where,
                                          hint="see the tool's input schema")), 3
    except StackletError as error:
        return error_envelope(error), error.exit_code
    except Exception as exc:  # noqa: BLE001 - the boundary: whatever else failed is one clear error, exit 3
        error = UnexpectedError.wrap(exc)
        return error_envelope(error), error.exit_code
    if isinstance(result, Verdict):
        return result.model_dump(mode="json"), result.exit_code
    exit_code = 2 if isinstance(result, DoctorResult) and not result.ok else 0
    return result.document() if isinstance(result, Envelope) else result.model_dump(mode="json"), exit_code


def main() -> None:
    """Read one request from stdin, print its answer, exit with its code."""
    try:
        document, code = run(json.load(sys.stdin))
    except KeyboardInterrupt:
        document, code = {"ok": False, "error": "Interrupted", "message": "the command was interrupted",
                          "hint": "what it started was removed as on Ctrl-C"}, 2
    sys.stdout.write(json.dumps(document) + "\n")
    sys.exit(code)


if __name__ == "__main__":
    main()
