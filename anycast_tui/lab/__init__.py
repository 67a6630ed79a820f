"""The simulated fabric (no root) and the namespace lab (root)."""
