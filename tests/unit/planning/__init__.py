"""Tests of stacklet.planning."""
