"""Configuration: the only place the environment and `mailmark.toml` are read."""

from mailmark.config.settings import (
    Settings,
    SettingsError,
    load_settings,
    parse_duration,
    parse_size,
)

__all__ = ["Settings", "SettingsError", "load_settings", "parse_duration", "parse_size"]
