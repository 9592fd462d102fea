"""The toolkit's version: one place, read by the package build and by `taskq version`."""

__version__ = "0.2.0"
