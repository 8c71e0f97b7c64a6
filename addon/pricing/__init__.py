"""Pricing: the bundled price table (from LiteLLM, MIT), overrides, lookup and exact costs.

Prices are decimal USD per million tokens; costs are integer picodollars (1e-12 USD). No
float ever holds money here. A model the book does not know has no price (``None``): record
it as unpriced, never as $0.
"""
