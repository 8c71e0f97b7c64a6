"""The `tollkeeper` command line: key management and usage reports."""
