"""Providers: data (hosts, auth location, base URL, error shape) plus which meter applies."""
