"""Inbound sources: the adapter protocol and the pieces sources share (registry in :mod:`.registry`)."""
