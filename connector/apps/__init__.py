"""Apps a merchant installs the connector as (the Shopify app): registry and shared parts."""
