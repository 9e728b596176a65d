"""The voucherify vendor: everything the connector knows of it lives in this folder (see NOTE.md)."""
