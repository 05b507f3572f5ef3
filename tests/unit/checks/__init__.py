"""Tests of stacklet.checks."""
