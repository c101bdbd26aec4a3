"""The CrossGuard policy pack that enforces the solution's security baseline (see baseline.py)."""
