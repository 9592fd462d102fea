"""The toolkit's configuration error, shared by every module that reads a setting."""

from __future__ import annotations

__all__ = ["ConfigError"]


class ConfigError(ValueError):
    """A setting is missing, malformed, or does not fit with another one. The message names the
    setting and the fix."""
