"""Outpost uplink service."""
