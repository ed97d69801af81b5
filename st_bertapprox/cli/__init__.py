"""The ``st-bertapprox`` command line (``main``)."""
