"""Flask blueprints: webhooks, health and metrics, admin."""
