"""The MCP tools given hostile arguments (an agent can be talked into any of them): a clean error
document, no file written, no option smuggled into the CLI, no traceback. No Docker daemon."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import anyio
import pytest
from mcp import StdioServerParameters
from mcp.client.session import ClientSession
from mcp.client.stdio import stdio_client

from stacklet.config.stack import MAX_RADIUS

from ..conftest import SHOP_DIR

pytestmark = pytest.mark.usefixtures("compose_cli")

NAMES = ["a/b", "x\ny", "--help", "--json", "-rf", "--all", "--output=OUT", "../../etc", "\x00", "é" * 300]


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A folder holding the shop stack and the fault profiles, where the server runs (outside any git repo)."""
    shutil.copytree(SHOP_DIR, tmp_path / "stacks" / "shop")
    shutil.copytree(SHOP_DIR.parents[1] / "faults", tmp_path / "faults")
    return tmp_path


def call_all(workspace: Path, calls: list[tuple[str, dict]]) -> list:
    params = StdioServerParameters(command=sys.executable, args=["-m", "stacklet", "--host", "unix:///nonexistent",
                                                                 "mcp", "--stack", "shop"], cwd=str(workspace))

    async def main():
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            return [await session.call_tool(tool, arguments) for tool, arguments in calls]

    return anyio.run(main)


def files_in(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if "__pycache__" not in p.parts}


def test_hostile_arguments_get_clean_errors_and_write_nothing(workspace, tmp_path_factory):
    target = tmp_path_factory.mktemp("outside") / "written"
    before = files_in(workspace)
    calls = [
        ("plan", {"services": ["orders"], "radius": 1_000_000_000}),
        ("plan", {"services": ["orders"], "radius": MAX_RADIUS + 1}),
        ("plan", {"services": ["orders"], "since": f"--output={target}"}),
        ("up", {"services": ["orders"], "since": "-o" + str(target)}),
        ("up", {"services": ["orders"], "timeout": 10**12}),
        ("plan", {"services": NAMES[:-2]}),
        ("plan", {"services": ["orders", "\x00"]}),
        ("status", {"slice": "--all\n"}),
        ("down", {"name": "--all"}),
        ("fault_add", {"target": "--slice=other", "type": "latency", "settings": [f"latency={10**30}"]}),
        ("fault_apply", {"profile": "../../etc/passwd"}),
        ("check", {"slice": "--all", "only": ["--junit=" + str(target)]}),
        ("skill", {"stack": NAMES[-1]}),
    ]
    results = call_all(workspace, calls)
    for (tool, arguments), result in zip(calls, results):
        where = f"{tool} {arguments!r}"
        assert result.is_error, where
        document = result.structured_content
        if document is None:  # refused by the tool's own schema (e.g. radius above its bound)
            assert "validation error" in result.content[0].text.lower(), where
            continue
        assert document["ok"] is False and document["message"], where
        assert document["exit_code"] in (2, 3), where
        assert document["error"] not in ("UnexpectedError", "CliError"), where
        assert "Traceback" not in str(document), where
        if document["exit_code"] == 2:  # only the missing engine may answer 2
            assert document["error"] in ("EngineUnavailable", "DockerError"), where
    assert not target.exists()
    assert files_in(workspace) == before
    by_call = dict(zip([repr(c) for c in calls], results))
    since = by_call[repr(calls[2])].structured_content
    assert since["error"] == "PlanError" and "--since must name a git commit" in since["message"]
    assert "less than or equal to 100" in by_call[repr(calls[1])].content[0].text
