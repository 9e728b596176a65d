"""The loyalty connector: signed webhooks in, loyalty activities and ESP events out, exactly once.

The app factory is :func:`connector.web.create_app`; importing this package loads nothing else.
"""
