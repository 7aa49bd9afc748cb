"""The chart itself: dependencies, render, validation, values, schema, docs, lint, footprint."""
