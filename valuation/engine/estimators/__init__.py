"""Shapley-value estimators. Each takes an ``EstimatorContext`` and returns a
``RawEstimate``; ``valuation.engine.estimate`` is the public way to call them."""
