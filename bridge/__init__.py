"""The outside world: CLI, ZeroMQ protocol, server and reference client."""
