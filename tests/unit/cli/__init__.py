"""Tests of stacklet.cli."""
