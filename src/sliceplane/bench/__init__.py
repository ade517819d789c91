"""sliceplane bench: the seed's evaluation measured on real components, beside its cost model."""
