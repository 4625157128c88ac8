"""Benchmarks that ship with tinyc, so `tinyc bench NAME` runs them from an installed package as well as
from a checkout (benchmarks/*.py are thin entry points and scripts of their own)."""
