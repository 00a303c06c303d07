"""Outpost polling service."""
