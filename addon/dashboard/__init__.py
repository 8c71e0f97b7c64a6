"""The usage dashboard: data from the store (``data``), HTML (``page``), served by the admin
listener and written to a file by ``tollkeeper report --html``."""
