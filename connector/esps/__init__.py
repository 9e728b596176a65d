"""Email service providers that receive relayed ``customer.*`` loyalty events (registry, base client)."""
