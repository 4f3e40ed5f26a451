"""Shapley-value estimators. Each takes an ``EstimatorContext`` and returns a
``RawEstimate``; ``valuation.engine.api.estimate`` is the public way to call them."""
