"""Store errors, translated to one-line messages by the CLI.

- ``NotFound``: the named key, real key or price does not exist.
- ``Conflict``: the change clashes with existing data (duplicate label, already revoked).
"""


class NotFound(LookupError):
    pass


class Conflict(ValueError):
    pass
