"""Fixtures and helpers shared by every test folder (services started on free loopback ports)."""
