"""PyTorch reference modules used by the oracle scripts in tests/."""
