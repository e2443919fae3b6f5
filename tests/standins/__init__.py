"""Stand-in servers for provider APIs, on 127.0.0.1, written from each provider's published API reference."""
