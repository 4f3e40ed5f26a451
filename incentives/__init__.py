"""Revenue pools, allocation policies, statements and disputes."""
