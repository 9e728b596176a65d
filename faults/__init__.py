"""The project's own fault suite (``make faults``): see ``faults/__main__.py``."""
