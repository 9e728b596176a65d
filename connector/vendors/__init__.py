"""One folder per vendor: its inbound source, its API client, its sandbox and its note.

A folder holds what the connector knows of one vendor, whatever role the vendor plays:

* ``source.py``: the inbound source adapter (pure: standard library and pydantic only);
* ``platform.py`` / ``esp.py`` / ``pms.py``: the client of its loyalty platform, email
  provider or PMS API (on :mod:`connector.http`);
* ``config.py``: the ``[loyalty]`` or ``[esp]`` table's model (pure);
* ``sandbox.py``: the stand-in the tests and ``connector sandbox`` use in its place;
* ``NOTE.md``: the docs followed, auth, delivery id, events, mapping and unverified facts.

Each role finds its vendors through its one registry (:mod:`connector.sources.registry`,
:mod:`connector.platforms.registry`, :mod:`connector.esps.registry`,
:mod:`connector.pms.registry`).
"""
