"""Errors that are the user's mistake: the CLI prints them as one line, without a traceback."""


class ConfigError(ValueError):
    """A config value is invalid. The message names the key, the value and what is allowed."""


def invalid(key: str, value: object, allowed: str) -> ConfigError:
    """Build the one-line message every user-facing check uses: ``key=value: allowed``."""
    return ConfigError(f"{key}={value!r} is invalid: {allowed}")


def first_line(e: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none)."""
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__
