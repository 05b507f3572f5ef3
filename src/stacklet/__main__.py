"""``python -m stacklet``: the same as the ``stacklet`` command."""

from stacklet.cli.app import main

main()
