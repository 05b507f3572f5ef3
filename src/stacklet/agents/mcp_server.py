"""An MCP (Model Context Protocol) server over stdio: the commands of ``stacklet.ops`` as tools.

The tools are derived from the command functions themselves: a tool's name, description and
input schema are the function's name, docstring and annotated parameters (without the session
and the progress callbacks, which the server supplies). Each call runs the command in a process
of its own (``stacklet.agents.oprun``) and returns exactly its JSON envelope, plus ``exit_code``;
errors come back as the error envelope (``ok: false``, ``message``, ``hint``), never as exceptions.
A timed-out or cancelled call interrupts the command, which cleans up as on Ctrl-C.
``stacklet mcp [--stack NAME]`` starts it; ``--context``/``--host``/``--advertise`` are passed on to every command.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import signal
import sys
import typing
from collections.abc import Callable
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp_types import CallToolResult, TextContent, ToolAnnotations

from stacklet import __version__
from stacklet.config.stack import load_stack
from stacklet.ops.commands import TOOLS
from stacklet.ops.skill import render_skill
from stacklet.runtime.readiness import DEFAULT_TIMEOUT_S

TIMEOUT_S = 120            # a command that does not boot anything
BOOT_TIMEOUT_MARGIN_S = 600  # `up` may take its per-service timeout several times over (build, start, seed)
CHECK_TIMEOUT_S = 900
INTERRUPT_GRACE_S = 60     # after SIGINT, time to tear down what a command started
SUPPLIED = ("session", "on_event", "on_progress", "on_plan", "on_removed")
"""Parameters the server fills itself: never part of a tool's input."""
READ_ONLY = {"plan", "why", "graph", "skill", "status", "ls", "logs", "fault_ls", "baseline_status", "doctor"}
DESTRUCTIVE = {"down", "gc", "baseline_down"}

INSTRUCTIONS = """\
stacklet boots only the slice of a Docker Compose stack that a change touches (the changed services,
their callers and callees, and the stateful services they use, seeded), forwarding everything else to
a shared baseline. Typical loop: `plan` (optional) -> `up` services -> `check` -> read `failures` and
`logs` -> fix the code -> `reload` the service -> `check` again -> `down` when done. Every tool returns
the JSON document of the same stacklet command (`stacklet NAME --json`) plus `exit_code` (0 success;
1 checks failed; 2 engine or slice failure; 3 usage or configuration error); on errors the document
has `ok: false`, `message` and `hint`. Read the `skill` tool (or resource stacklet://skill) first for
the services, checks, fault profiles and seeds of the stack."""


class OpRunner:
    """Runs one command in ``python -m stacklet.agents.oprun`` and returns its JSON and exit code."""

    def __init__(self, context: str | None = None, host: str | None = None, stack: str | None = None,
                 advertise: str | None = None):
        self.request = {"context": context, "host": host, "stack": stack, "advertise": advertise}

    async def run(self, op: str, args: dict[str, Any], timeout_s: float = TIMEOUT_S) -> tuple[dict[str, Any], int]:
        """The command's JSON document and exit code; a failure to run it becomes an error document."""
        process = await asyncio.create_subprocess_exec(sys.executable, "-m", "stacklet.agents.oprun",
                                                       stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                                                       stderr=asyncio.subprocess.PIPE)
        payload = json.dumps({**self.request, "op": op, "args": args}).encode()
        try:
            stdout, stderr = await asyncio.wait_for(process.communicate(payload), timeout_s)
        except asyncio.TimeoutError:
            await _interrupt(process)
            return _error("Timeout", f"`{op}` did not finish within {timeout_s:g}s; it was interrupted (what it "
                          "started is removed as on Ctrl-C)", "see `status` and `logs`; a boot may need a larger "
                          "`timeout`"), 2
        except BaseException:
            await _interrupt(process)  # the tool call was cancelled: do not leave the command running
            raise
        try:
            return json.loads(stdout.decode(errors="replace")), process.returncode
        except json.JSONDecodeError:
            detail = (stderr.decode(errors="replace").strip() or stdout.decode(errors="replace"))[-2000:]
            return _error("CommandError", f"`{op}` did not answer in JSON", "see details", detail), \
                process.returncode or 2


async def _interrupt(process: asyncio.subprocess.Process) -> None:
    """SIGINT (stacklet cleans up as on Ctrl-C), then SIGKILL if it does not end."""
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGINT)
    try:
        await asyncio.wait_for(asyncio.shield(process.wait()), INTERRUPT_GRACE_S)
    except (asyncio.TimeoutError, asyncio.CancelledError):
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()


def _error(kind: str, message: str, hint: str | None, details: str | None = None) -> dict[str, Any]:
    return {"ok": False, "error": kind, "message": message, "hint": hint, "details": details}


def _result(document: dict[str, Any], exit_code: int) -> CallToolResult:
    """The document (with ``exit_code``) as structured content and as JSON text."""
    document = {**document, "exit_code": exit_code}
    failed = document.get("ok") is False and "error" in document
    return CallToolResult(content=[TextContent(type="text", text=json.dumps(document, indent=2))],
                          structured_content=document, is_error=failed)


def _timeout(op: str, args: dict[str, Any]) -> float:
    if op in ("up", "reload", "restart", "baseline_up"):
        return int(args.get("timeout") or DEFAULT_TIMEOUT_S) * 3 + BOOT_TIMEOUT_MARGIN_S
    return CHECK_TIMEOUT_S if op == "check" else TIMEOUT_S


def tool_for(op: Callable[..., Any], runner: OpRunner) -> Callable[..., Any]:
    """An async tool with the command's name, docstring and parameters (less those the server supplies)."""
    hints = typing.get_type_hints(op, include_extras=True)
    parameters = [p.replace(annotation=hints[p.name]) for p in inspect.signature(op).parameters.values()
                  if p.name not in SUPPLIED]

    async def tool(**args: Any) -> CallToolResult:
        args = {k: (str(v) if hasattr(v, "__fspath__") else v) for k, v in args.items()}
        return _result(*await runner.run(op.__name__, _plain(args), _timeout(op.__name__, args)))

    tool.__name__ = op.__name__
    tool.__doc__ = inspect.getdoc(op)
    tool.__signature__ = inspect.Signature(parameters, return_annotation=CallToolResult)
    tool.__annotations__ = {p.name: p.annotation for p in parameters} | {"return": CallToolResult}
    return tool


def _plain(value: Any) -> Any:
    """Arguments as JSON values (paths as strings)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(value) if hasattr(value, "__fspath__") else value


def build_server(stack: str | None = None, context: str | None = None, host: str | None = None,
                 advertise: str | None = None) -> MCPServer:
    """The MCP server with a tool per command; ``stack`` is the default for tools that take one."""
    runner = OpRunner(context, host, stack, advertise)
    server = MCPServer("stacklet", version=__version__, instructions=INSTRUCTIONS)
    for op in TOOLS:
        name = op.__name__
        annotations = (ToolAnnotations(read_only_hint=True, destructive_hint=False) if name in READ_ONLY else
                       ToolAnnotations(destructive_hint=True) if name in DESTRUCTIVE else None)
        server.add_tool(tool_for(op, runner), name=name, annotations=annotations)

    @server.resource("stacklet://skill", name="skill", mime_type="text/markdown",
                     description="The skill document of the server's stack (as `stacklet skill`).")
    def skill_resource() -> str:
        return render_skill(load_stack(stack))

    return server


def serve(stack: str | None = None, context: str | None = None, host: str | None = None,
          advertise: str | None = None) -> None:
    """Run the MCP server on stdin/stdout until the client closes it."""
    build_server(stack, context, host, advertise).run("stdio")
