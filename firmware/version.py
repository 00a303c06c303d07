"""The running firmware's version."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("outpost")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+source"
