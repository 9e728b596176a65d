"""Malformed-input fuzzing of every inbound source (``make fuzz``; a short version runs in the tests).

* :mod:`fuzz.mutate`: seeded mutations of the real fixtures (other JSON types, deep nesting, lone
  surrogates, huge numbers, missing keys) and raw garbage.
* :mod:`fuzz.targets`: one tenant with every source, its secrets, and how to sign for each source.
* ``python -m fuzz``: the run against gunicorn and real workers (see :mod:`fuzz.__main__`).
"""
