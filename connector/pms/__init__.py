"""PMS APIs that the worker calls to enrich thin webhooks (registry)."""
