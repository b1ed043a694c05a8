"""masquerade: face swapping whose every output is marked as synthetic."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("masquerade")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"
