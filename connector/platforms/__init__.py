"""Loyalty platforms: the role shared by Glu, LoyaltyLion and Voucherify (registry, base types)."""
