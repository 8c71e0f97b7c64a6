"""Store errors, translated to one-line messages by the CLI.

- ``NotFound``: the named key, real key or price does not exist.
- ``Conflict``: the change clashes with existing data (duplicate label, already revoked).
- ``StoreUnavailable``: the database cannot be reached or migrated (raised by ``db``; here
  so that catching it imports no SQLAlchemy).
"""


class NotFound(LookupError):
    pass


class Conflict(ValueError):
    pass


class StoreUnavailable(Exception):
    """The database cannot be reached or migrated."""
