"""Metering: usage from provider responses (JSON and streams) and offline token estimates."""
