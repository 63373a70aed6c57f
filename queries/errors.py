"""The one error type a user sees: a problem they can fix, said in one line."""


class UserError(Exception):
    """Bad input or an unusable store. The CLI prints the message as one line and exits with 2."""


def first_line(error: BaseException | str) -> str:
    """The first line of an error's message (its type name when the message is empty)."""
    text = str(error).strip()
    if text:
        return text.splitlines()[0]
    return type(error).__name__ if isinstance(error, BaseException) else "unknown error"
