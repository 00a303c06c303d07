"""Outpost alerting service."""
