"""Checks against a live slice, runtime signals and the verdict."""
