"""Contract-faithful local stand-ins for the vendors' APIs, all served by one server
(:mod:`connector.sandbox.server`), and the parts the vendor sandboxes share: fault injection
(:mod:`.base`), the ESP sandboxes' base (:mod:`.esp`) and the sender side (:mod:`.sender`).

Importing this package loads nothing else, so a vendor's sandbox may import the shared parts
before the server, which loads every vendor's sandbox, is imported.
"""
