"""The command line: Typer app, text rendering, doctor."""
