"""A real Cloud Storage emulator (gcp-storage-emulator) in this process, on a free port."""

from __future__ import annotations

from typing import Any

from gcp_storage_emulator.server import create_server

BUCKET = "models"


class GcsEmulator:
    """Start once, ``wipe`` between tests; ``url`` is the STORAGE_EMULATOR_HOST value."""

    def __init__(self, default_bucket: str = BUCKET) -> None:
        self._server: Any = create_server(
            "127.0.0.1", 0, in_memory=True, default_bucket=default_bucket
        )

    def start(self) -> None:
        self._server.start()  # serves from a thread of this process

    def stop(self) -> None:
        self._server.stop()

    def wipe(self) -> None:
        """Delete every object; keep the buckets (the default one included)."""
        self._server.wipe(keep_buckets=True)

    @property
    def url(self) -> str:
        # The emulator has no public accessor for the port it bound (port 0 = any free port).
        port: int = self._server._api._httpd.server_address[1]
        return f"http://127.0.0.1:{port}"

    def bucket(self, name: str = BUCKET) -> Any:
        """A google-cloud-storage Bucket of the emulator's, without touching the environment."""
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        client = storage.Client(
            project="test",
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options={"api_endpoint": self.url},
        )
        return client.bucket(name)
