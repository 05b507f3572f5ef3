"""An MCP (Model Context Protocol) server over stdio: stacklet's commands as tools for coding agents.

Each tool runs the stacklet CLI in a subprocess with ``--json`` and returns exactly the document the
CLI prints, plus ``exit_code``. Errors come back as the CLI's JSON error document (``ok: false``,
``message``, ``hint``), never as exceptions. ``stacklet mcp [--stack NAME]`` starts it; the
``--context``/``--host`` options given to stacklet are passed on to every command.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import MCPServer
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field

from stacklet import __version__
from stacklet.errors import StackletError, UnexpectedError
from stacklet.agents.skill import render_skill
from stacklet.config.stack import MAX_RADIUS, MAX_TIMEOUT_S, load_stack

TIMEOUT_S = 120            # a command that does not touch a slice's boot
UP_TIMEOUT_MARGIN_S = 600  # `up` may take its per-service timeout several times over (build, start, seed)
CHECK_TIMEOUT_S = 900
INTERRUPT_GRACE_S = 60     # after SIGINT, time to tear down what a command started

INSTRUCTIONS = """\
stacklet boots only the slice of a Docker Compose stack that a change touches (the changed services,
their callers and callees, and the stateful services they use, seeded), forwarding everything else to
a shared baseline. Typical loop: `plan` (optional) -> `up` services -> `check` -> read `failures` and
`logs` -> fix the code -> `reload` the service -> `check` again -> `down` when done. Every tool returns
the JSON document of the stacklet CLI plus `exit_code` (0 success; 1 checks failed; 2 engine or slice
failure; 3 usage or configuration error); on errors the document has `ok: false`, `message` and
`hint`. Read the `skill` tool (or resource stacklet://skill) first for the services, checks, fault
profiles and seeds of the stack."""

Services = Annotated[list[str], Field(description="changed services (Compose service names), e.g. [\"orders\"]")]
Since = Annotated[str | None, Field(description="also the services whose files changed since this git ref, "
                                                "e.g. \"main\" (committed, uncommitted and untracked changes)")]
Radius = Annotated[int | None, Field(description="callers/callees distance to include (default: the stack's, "
                                                 f"usually 1), at most {MAX_RADIUS}", ge=0, le=MAX_RADIUS)]
StackArg = Annotated[str | None, Field(description="stack name under stacks/ (default: the server's --stack, "
                                                   "or the only stack)")]
SliceArg = Annotated[str | None, Field(description="slice name, as returned by `up` in slice.name (default: the "
                                                   "only running slice)")]


class CliRunner:
    """Runs ``python -m stacklet [--context C] [--host H] ARGS... --json`` and returns its JSON."""

    def __init__(self, context: str | None = None, host: str | None = None):
        self.prefix = [sys.executable, "-m", "stacklet"]
        if context:
            self.prefix += ["--context", context]
        if host:
            self.prefix += ["--host", host]

    async def run(self, args: list[str], timeout_s: float = TIMEOUT_S,
                  json_lines: bool = False) -> tuple[dict[str, Any], int]:
        """The command's JSON document and exit code; failures to run it become an error document.

        With ``json_lines`` a successful command's output is one JSON object per line (``logs --json``).
        """
        if any("\0" in arg for arg in args):  # no process can take it; say so instead of crashing the tool
            return _error("UsageError", "an argument holds a NUL character", "pass names and values as plain text"), 3
        argv = [*self.prefix, *args]
        process = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL,
                                                       stdout=asyncio.subprocess.PIPE,
                                                       stderr=asyncio.subprocess.PIPE)
        try:
            stdout, stderr = await asyncio.wait_for(process.communicate(), timeout_s)
        except asyncio.TimeoutError:
            await _interrupt(process)
            return _error("Timeout", f"`stacklet {' '.join(args)}` did not finish within {timeout_s:g}s; it was "
                          "interrupted (what it started is removed as on Ctrl-C)",
                          "see `status` and `logs`; a boot may need a larger `timeout`"), 2
        except BaseException:
            await _interrupt(process)  # the tool call was cancelled: do not leave the command running
            raise
        lines = json_lines and process.returncode == 0
        return _document(stdout.decode(errors="replace"), stderr.decode(errors="replace"), args, lines), \
            process.returncode


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


def _document(stdout: str, stderr: str, args: list[str], json_lines: bool = False) -> dict[str, Any]:
    """Parse one JSON document (a list goes under ``items``), or JSON lines into ``{"ok": true, "lines": [...]}``."""
    text = stdout.strip()
    try:
        if json_lines:
            return {"ok": True, "lines": [json.loads(line) for line in text.splitlines() if line.strip()]}
        data = json.loads(text)
    except json.JSONDecodeError:
        detail = (stderr.strip() or text)[-2000:]
        return _error("CliError", f"`stacklet {' '.join(args)}` did not print JSON",
                      "see details (the command's output)", detail)
    return data if isinstance(data, dict) else {"ok": True, "items": data}


def _error(kind: str, message: str, hint: str | None, details: str | None = None) -> dict[str, Any]:
    return {"ok": False, "error": kind, "message": message, "hint": hint, "details": details}


def _result(document: dict[str, Any], exit_code: int) -> CallToolResult:
    """The document (with ``exit_code``) as structured content and as JSON text."""
    document = {**document, "exit_code": exit_code}
    failed = document.get("ok") is False and "error" in document
    return CallToolResult(content=[TextContent(type="text", text=json.dumps(document, indent=2))],
                          structured_content=document, is_error=failed)


def _opt(flag: str, value: Any) -> list[str]:
    """An option as one word (``--since=VALUE``), so a value starting with '-' is never read as an option."""
    return [] if value is None or value is False else [flag] if value is True else [f"{flag}={value}"]


def _positional(values: list[str]) -> list[str]:
    """Arguments after ``--``, so a name starting with '-' is never read as an option; put them last."""
    return ["--", *values] if values else []


def build_server(stack: str | None = None, context: str | None = None, host: str | None = None) -> MCPServer:
    """The MCP server with stacklet's tools; ``stack`` is the default for tools that take one."""
    cli = CliRunner(context, host)
    server = MCPServer("stacklet", version=__version__, instructions=INSTRUCTIONS)
    read_only = ToolAnnotations(read_only_hint=True, destructive_hint=False)

    default_stack = stack

    def stack_args(value: str | None) -> list[str]:
        return _opt("--stack", value or default_stack)

    @server.tool(annotations=read_only)
    async def plan(services: Services = [], since: Since = None, radius: Radius = None,
                   stack: StackArg = None) -> CallToolResult:
        """Show the slice a change would boot, without Docker: `local` services (role changed/caller/callee/
        stateful, ports, reasons), `forwarded` services (baseline address), `links`, link `proxies` and
        `seeds`. Same JSON as `stacklet plan SERVICE... --json`."""
        return _result(*await cli.run(["plan", *_opt("--since", since), *_opt("--radius", radius),
                                       *stack_args(stack), "--json", *_positional(services)]))

    @server.tool()
    async def up(services: Services = [], since: Since = None, radius: Radius = None,
                 name: Annotated[str | None, Field(description="slice name (default: stack and services, "
                                                               "e.g. shop-orders)")] = None,
                 fault: Annotated[str | None, Field(description="fault profile (faults/NAME.yaml) to apply "
                                                                "once healthy")] = None,
                 fault_seed: Annotated[int | None, Field(description="seed for repeatable fault randomness")] = None,
                 no_seed: Annotated[bool, Field(description="do not load seed data")] = False,
                 timeout: Annotated[int, Field(description="seconds each service may take to become healthy",
                                               gt=0, le=MAX_TIMEOUT_S)] = 180,
                 ttl: Annotated[str | None, Field(description="expire after e.g. 30m, 2h, 1d, or never (default: "
                                                              "the stack's ttl)")] = None,
                 stack: StackArg = None) -> CallToolResult:
        """Boot the slice for a change (build from the working tree, start in dependency order, seed,
        apply faults) and return when it is healthy: `{"ok", "plan", "slice": {"name", "healthy",
        "services": [{"name", "role", "state", "health", "endpoints"}]}}`. The shared baseline must be up.
        A failed boot returns the failing service, its health output and logs, and removes the slice.
        Same JSON as `stacklet up SERVICE... --json`."""
        args = ["up", *_opt("--since", since), *_opt("--radius", radius), *_opt("--name", name),
                *_opt("--fault", fault), *_opt("--fault-seed", fault_seed), *_opt("--no-seed", no_seed),
                *_opt("--timeout", timeout), *_opt("--ttl", ttl), *stack_args(stack), "--json", *_positional(services)]
        return _result(*await cli.run(args, timeout * 3 + UP_TIMEOUT_MARGIN_S))

    @server.tool()
    async def reload(service: Annotated[str, Field(description="the service to rebuild and restart")],
                     slice: SliceArg = None,
                     timeout: Annotated[int, Field(description="seconds it may take to become healthy", gt=0,
                                                        le=MAX_TIMEOUT_S)] = 180
                     ) -> CallToolResult:
        """After editing a service's code: rebuild its image and recreate only its container in the running
        slice, returning once it is healthy again (`{"ok", "reload": {...}}`). Faults on the links stay; a
        reloaded stateful service is seeded again. Same JSON as `stacklet reload SERVICE --json`."""
        return _result(*await cli.run(["reload", *_opt("--slice", slice), *_opt("--timeout", timeout),
                                       "--json", *_positional([service])], timeout * 3 + UP_TIMEOUT_MARGIN_S))

    @server.tool(annotations=read_only)
    async def status(slice: SliceArg = None) -> CallToolResult:
        """A slice's services: `healthy`, and per service `state`, `health`, `health_output`, `restarts`,
        `endpoints` (`address`: what works from where stacklet runs; `host` on the engine's host,
        `network` inside the slice), `in_container`/`attached_as`. Same JSON as
        `stacklet status NAME --json`."""
        return _result(*await cli.run(["status", "--json", *_positional([slice] if slice else [])]))

    @server.tool(annotations=read_only)
    async def ls() -> CallToolResult:
        """Every slice on the engine (`items`: name, stack, changed, age_s, expires, expires_in_s, expired,
        containers, running, healthy).
        Same JSON as `stacklet ls --json`, under `items`."""
        return _result(*await cli.run(["ls", "--json"]))

    @server.tool(annotations=read_only)
    async def logs(service: Annotated[str | None, Field(description="one service (default: all of the "
                                                                    "slice)")] = None,
                   slice: SliceArg = None,
                   tail: Annotated[int, Field(description="last N lines per service", gt=0)] = 200
                   ) -> CallToolResult:
        """Recent logs of a slice or of one of its services: `{"ok": true, "lines": [{"service", "line"}]}`
        (the JSON lines of `stacklet logs --tail N --json`)."""
        return _result(*await cli.run(["logs", *_opt("--slice", slice), *_opt("--tail", tail), "--json",
                                       *_positional([service] if service else [])], json_lines=True))

    @server.tool()
    async def check(slice: SliceArg = None,
                    all: Annotated[bool, Field(description="run every check, not only those relevant to the "
                                                           "slice's changed services")] = False,
                    only: Annotated[list[str], Field(description="run just these checks, by name")] = []
                    ) -> CallToolResult:
        """Run the stack's checks against a slice and return one verdict: `ok`, `verdict` (passed, failed,
        unhealthy), `failures` (kind, service, check, step, expected, actual, logs). exit_code 0 passed,
        1 checks failed, 2 slice not healthy, 3 usage error. Same JSON as `stacklet check NAME --json`."""
        args = ["check", *_opt("--all", all), *(a for c in only for a in _opt("--only", c)), "--json",
                *_positional([slice] if slice else [])]
        return _result(*await cli.run(args, CHECK_TIMEOUT_S))

    @server.tool()
    async def fault(action: Annotated[Literal["apply", "add", "clear", "ls"],
                                      Field(description="apply a profile, add one fault, clear faults, or "
                                                        "list targets and faults in force")],
                    slice: SliceArg = None,
                    profile: Annotated[str | None, Field(description="apply: the fault profile name "
                                                                     "(faults/NAME.yaml)")] = None,
                    target: Annotated[str | None, Field(description="add: the link target (a service name as "
                                                                    "its callers see it, or @forwarded, @local, "
                                                                    "@all); clear: one target (default: all)")]
                    = None,
                    type: Annotated[str | None, Field(description="add: latency, bandwidth, slow_close, timeout, "
                                                                  "reset_peer, slicer, limit_data, noop, or "
                                                                  "down")] = None,
                    settings: Annotated[dict[str, str | int | float], Field(
                        description="add: attributes (e.g. {\"latency\": 300, \"jitter\": 50}) and optional "
                                    "stream (upstream/downstream), toxicity (0..1), name")] = {}
                    ) -> CallToolResult:
        """Faults on the links of a running slice. Same JSON as `stacklet fault apply|add|clear|ls --json`:
        apply/add/clear return `{"ok", "faults": [...]}`, ls returns `{"targets", "faults"}`."""
        if action == "apply":
            if not profile:
                return _result(_error("UsageError", "fault apply needs `profile`",
                                      "the `skill` tool lists the fault profiles"), 3)
            args = ["fault", "apply", profile]
        elif action == "add":
            if not target or not type:
                return _result(_error("UsageError", "fault add needs `target` and `type`",
                                      "e.g. target=payments, type=latency, settings={\"latency\": 300}"), 3)
            args = ["fault", "add", target, type, *(f"{k}={v}" for k, v in settings.items())]
        elif action == "clear":
            args = ["fault", "clear", *([target] if target else [])]
        else:
            args = ["fault", "ls"]
        command, positionals = args[:2], args[2:]
        return _result(*await cli.run([*command, *_opt("--slice", slice), "--json", *_positional(positionals)]))

    @server.tool(annotations=ToolAnnotations(destructive_hint=True))
    async def down(name: Annotated[str | None, Field(description="slice name (default: the only running "
                                                                 "slice)")] = None,
                   all: Annotated[bool, Field(description="remove every slice on the engine")] = False
                   ) -> CallToolResult:
        """Remove a slice: containers, network, volumes and the images it built. Returns
        `{"ok": true, "removed": [names]}`. Same JSON as `stacklet down NAME --json`."""
        return _result(*await cli.run(["down", *_opt("--all", all), "--json", *_positional([name] if name else [])]))

    @server.tool(name="skill", annotations=read_only)
    def skill_tool(stack: StackArg = None) -> CallToolResult:
        """The stack's skill document (Markdown): services and what calls what, how to boot a slice and read
        the check verdict, fault profiles, seeds. Same text as `stacklet skill`."""
        try:
            text = render_skill(load_stack(stack or default_stack))
        except StackletError as error:
            return _result({"ok": False, **error.to_dict()}, error.exit_code)
        except Exception as exc:  # the tool answers like the CLI boundary: a sentence, never a crash
            error = UnexpectedError.wrap(exc)
            return _result({"ok": False, **error.to_dict()}, error.exit_code)
        return CallToolResult(content=[TextContent(type="text", text=text)])

    @server.resource("stacklet://skill", name="skill", mime_type="text/markdown",
                     description="The skill document of the server's stack (as `stacklet skill`).")
    def skill_resource() -> str:
        return render_skill(load_stack(default_stack))

    return server


def serve(stack: str | None = None, context: str | None = None, host: str | None = None) -> None:
    """Run the MCP server on stdin/stdout until the client closes it."""
    build_server(stack, context, host).run("stdio")
