"""Network shells: peer transport, HTTP API."""
