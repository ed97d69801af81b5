"""``python -m st_bertapprox.cli``: the ``st-bertapprox`` command line."""

from st_bertapprox.cli.main import main

main()
