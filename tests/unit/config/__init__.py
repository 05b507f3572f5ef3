"""Tests of stacklet.config."""
