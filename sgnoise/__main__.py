"""``python -m sgnoise COMMAND [flags]``: the ``sgnoise`` console script (:mod:`sgnoise.cli`)."""

from sgnoise.cli import main

main()
