"""The MCP server against a real engine: a slice of the shop booted, inspected, checked, faulted and removed
through MCP tool calls (`python -m stacklet mcp --stack shop` over stdio)."""

from __future__ import annotations

import json
import sys

import anyio
from mcp import StdioServerParameters
from mcp.client.session import ClientSession
from mcp.client.stdio import stdio_client

from .conftest import NOTHING, REPO, leftovers, run_cli

SLICE = "mcp-orders"


def data(result) -> dict:
    assert result.structured_content is not None, result.content
    return result.structured_content


def test_slice_through_mcp(driver, shop_baseline):
    params = StdioServerParameters(command=sys.executable, args=["-m", "stacklet", "mcp", "--stack", "shop"],
                                   cwd=str(REPO))
    calls: dict[str, dict] = {}

    async def main():
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()

            async def call(label: str, tool: str, arguments: dict) -> dict:
                calls[label] = data(await session.call_tool(tool, arguments))
                return calls[label]

            await call("up", "up", {"services": ["orders"], "name": SLICE, "timeout": 240})
            if calls["up"]["exit_code"] != 0:
                return
            await call("status", "status", {"slice": SLICE})
            await call("logs", "logs", {"slice": SLICE, "service": "orders", "tail": 20})
            await call("check", "check", {"slice": SLICE})
            await call("add", "fault_add", {"slice": SLICE, "target": "payments", "type": "latency",
                                            "settings": ["latency=300", "jitter=50"]})
            await call("ls", "fault_ls", {"slice": SLICE})
            await call("down", "down", {"name": SLICE})

    try:
        anyio.run(main)
    finally:
        if "down" not in calls:
            run_cli("down", SLICE, check=False)

    up = calls["up"]
    assert up["exit_code"] == 0 and up["ok"] is True, json.dumps(up, indent=2)[:3000]
    assert up["slice"]["name"] == SLICE and up["slice"]["healthy"] is True
    assert {s["name"] for s in up["plan"]["local"]} >= {"orders", "payments", "orders-db"}

    status = calls["status"]
    assert status["exit_code"] == 0 and status["name"] == SLICE and status["healthy"] is True
    orders = next(s for s in status["services"] if s["name"] == "orders")
    assert orders["endpoints"] and orders["endpoints"][0]["network"] == "orders:8081"

    logs = calls["logs"]
    assert logs["exit_code"] == 0 and logs["lines"]
    assert {line["service"] for line in logs["lines"]} == {"orders"}

    check = calls["check"]
    assert check["exit_code"] == 0 and check["verdict"] == "passed", json.dumps(check, indent=2)[:3000]

    added = calls["add"]
    assert added["exit_code"] == 0 and added["ok"] is True
    assert [(f["type"], f["attributes"]["latency"]) for f in added["faults"]] == [("latency", 300)]
    listed = calls["ls"]
    assert "payments" in listed["targets"]
    assert any(f["route"] == "payments" and f["type"] == "latency" for f in listed["faults"]), listed

    assert calls["down"] == {"ok": True, "removed": [SLICE], "exit_code": 0}
    assert leftovers(driver, SLICE) == NOTHING
