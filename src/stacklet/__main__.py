"""``python -m stacklet``: the same as the ``stacklet`` command."""

from stacklet.cli import main

main()
