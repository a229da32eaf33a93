"""Test support shared by the test suites and the benchmarks: a real Synapse on loopback and
client-server API helpers that work against any homeserver."""
