"""Outpost firmware: entry point, supervisor, configuration and system integration."""
