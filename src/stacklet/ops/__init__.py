"""The command layer: one function per command (``commands``), its result models (``results``), the
session every command runs in (``session``), and the documents it produces (``skill``, ``doctor``)."""
