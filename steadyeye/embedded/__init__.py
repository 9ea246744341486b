"""The embedded stack: broker, Triton, Redis and the services as local processes."""
