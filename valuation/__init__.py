"""Training runs and their uploads, valuation runs, and the pure valuation engine."""
