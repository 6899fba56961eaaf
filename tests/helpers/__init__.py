"""Helpers shared by the test modules: one of each, so no test module imports another."""
