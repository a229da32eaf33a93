"""Side-by-side benchmarks of RocketNode against Synapse: ``python -m bench NAME``."""
