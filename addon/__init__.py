"""tollkeeper: a self-hosted LLM API gateway built as a mitmproxy addon."""
