"""Every section of the appliance configuration (TOML): one frozen dataclass a section.

The sections are the vocabulary every layer shares, so they live at the bottom; the code that
uses a section reads it from ``ctx.config`` (core/config.py composes them).
"""
