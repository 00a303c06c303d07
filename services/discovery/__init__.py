"""Outpost discovery service."""
