"""Textual interface: renders what the core computes."""
