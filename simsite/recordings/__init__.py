"""Recordings shipped with simsite (see README.md); generate.py writes them."""
