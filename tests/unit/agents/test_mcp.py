"""mcp_server.py through the MCP client library, against `python -m stacklet mcp` over stdio. No Docker daemon.

The tools are derived from stacklet.ops.commands: one per command, with its parameters and docstring."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import anyio
import pytest
from mcp import StdioServerParameters
from mcp.client.session import ClientSession
from mcp.client.stdio import stdio_client

from stacklet.agents.oprun import run as run_op
from stacklet.ops.commands import TOOLS as COMMANDS

from ..conftest import REPO_ROOT

pytestmark = pytest.mark.usefixtures("compose_cli")

TOOLS = {"plan", "why", "graph", "skill", "up", "reload", "status", "ls", "logs", "down", "gc", "seed", "reset",
         "restart", "check", "traffic", "fault_apply", "fault_add", "fault_clear", "fault_ls", "baseline_up", "baseline_down",
         "baseline_status", "doctor", "warm"}


def with_session(work, *server_args: str):
    """Start `stacklet mcp --stack shop` and run ``work(session)`` against it."""
    params = StdioServerParameters(command=sys.executable, args=["-m", "stacklet", *server_args, "mcp",
                                                                 "--stack", "shop"], cwd=str(REPO_ROOT),
                                   env=dict(os.environ))  # the same engine as the CLI it is compared with

    async def main():
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            return await work(session)

    return anyio.run(main)


def test_tools_and_their_schemas():
    async def work(session):
        return (await session.list_tools()).tools

    tools = {tool.name: tool for tool in with_session(work)}
    assert set(tools) == TOOLS == {op.__name__ for op in COMMANDS}
    for tool in tools.values():
        assert len(tool.description) > 40, tool.name
        for name, schema in tool.input_schema.get("properties", {}).items():
            assert schema.get("description"), f"{tool.name}.{name} has no description"
    up = tools["up"].input_schema["properties"]
    assert up["services"]["type"] == "array" and {"since", "radius", "name", "fault", "ttl", "stack"} <= set(up)
    assert tools["fault_add"].input_schema["required"] == ["target", "type"]
    assert "session" not in json.dumps([t.input_schema for t in tools.values()])
    assert not any(name.startswith("on_") for t in tools.values() for name in t.input_schema.get("properties", {}))
    assert set(tools["check"].input_schema["properties"]) == {"slice", "all", "only", "reference"}


def test_plan_is_the_cli_json():
    async def work(session):
        return await session.call_tool("plan", {"services": ["orders"]})

    result = with_session(work)
    expected = json.loads(subprocess.run([sys.executable, "-m", "stacklet", "plan", "orders", "--stack", "shop",
                                          "--json"], capture_output=True, text=True, check=True,
                                         cwd=REPO_ROOT).stdout)
    assert not result.is_error
    assert result.structured_content == {**expected, "exit_code": 0}
    assert json.loads(result.content[0].text) == result.structured_content


def test_errors_are_the_cli_error_document():
    async def work(session):
        return (await session.call_tool("plan", {"services": ["nope"]}),
                await session.call_tool("fault_add", {"target": "payments", "type": "wobble"}),
                await session.call_tool("fault_apply", {"profile": "no-such-profile"}),
                await session.call_tool("skill", {"stack": "nope"}))

    unknown, bad_toxic, no_profile, no_stack = with_session(work)
    for result in (unknown, bad_toxic, no_profile, no_stack):
        assert result.is_error
        assert result.structured_content["ok"] is False and result.structured_content["hint"]
        assert result.structured_content["exit_code"] == 3
    assert unknown.structured_content["error"] == "PlanError"
    assert unknown.structured_content["message"] == "unknown service(s): nope"
    assert "unknown toxic type 'wobble'" in bad_toxic.structured_content["message"]
    assert "no-such-profile" in no_profile.structured_content["message"]
    assert no_stack.structured_content["error"] == "StackFileError"


def test_skill_tool_and_resource():
    async def work(session):
        return (await session.call_tool("skill", {}), await session.read_resource("stacklet://skill"))

    tool, resource = with_session(work)
    text = tool.structured_content["skill"]
    assert text.startswith("# Working on the `shop` stack with stacklet")
    assert resource.contents[0].text == text


def test_engine_options_are_passed_on():
    async def work(session):
        return (await session.call_tool("status", {"slice": "mcp-none"}),
                await session.call_tool("logs", {"slice": "mcp-none"}),
                await session.call_tool("reload", {"service": "orders", "slice": "mcp-none"}))

    for result in with_session(work, "--host", "unix:///nonexistent/docker.sock"):
        assert result.is_error and result.structured_content["ok"] is False
        assert result.structured_content["exit_code"] == 2
        assert "nonexistent" in json.dumps(result.structured_content)


def test_commands_run_in_their_own_process_answer_one_envelope():
    document, code = run_op({"op": "plan", "args": {"services": ["orders"]}, "stack": "shop"})
    assert code == 0 and document["ok"] is True and document["changed"] == ["orders"]
    document, code = run_op({"op": "plan", "args": {"radius": "far"}, "stack": "shop"})
    assert code == 3 and document["ok"] is False and document["key"] == "radius"
    document, code = run_op({"op": "chek", "args": {}})
    assert code == 3 and document["ok"] is False and "no command" in document["message"]
