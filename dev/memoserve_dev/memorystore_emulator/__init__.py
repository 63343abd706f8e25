"""A local Cloud Memorystore for Redis v1 API, backed by real redis-server processes.

For offline development (``memoserve dev memorystore-emulator``) and tests: the operator talks
to it through google-cloud-redis exactly as to Google (only the endpoint differs). What it
covers and where it differs from Memorystore: docs/memorystore.md.
"""
