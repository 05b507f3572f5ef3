"""Front ends for coding agents: the generated skill and the MCP server."""
