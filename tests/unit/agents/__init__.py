"""Tests of stacklet.agents."""
