"""The one error type a user sees: a problem they can fix, said in one line."""


class UserError(Exception):
    """Bad input or an unusable store. The CLI prints the message as one line and exits with 2."""


def first_line(error: BaseException | str) -> str:
    """The first line of an error's message (its type name when the message is empty)."""
    text = str(error).strip()
    if text:
        return text.splitlines()[0]
    return type(error).__name__ if isinstance(error, BaseException) else "unknown error"


def clip(text, limit: int = 120) -> str:
    """`str(text)` cut to `limit` characters, so that a huge input keeps its message short."""
    text = str(text)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def shown(value, limit: int = 120) -> str:
    """`repr(value)` cut to `limit` characters: how a message quotes a user's value."""
    return clip(repr(value), limit)


def no_such_model(*names: str, stored: list[str] | None = None) -> UserError:
    """The error for asking about models that are not stored (or not yet complete); with `stored`,
    it lists the stored models instead of pointing at `neurocypher models`."""
    hint = "see `neurocypher models`" if stored is None else f"stored models: {', '.join(stored) or 'none'}"
    return UserError(f"no model named {', '.join(map(shown, names))} is stored; {hint}")
