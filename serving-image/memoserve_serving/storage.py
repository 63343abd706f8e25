"""Model files from Cloud Storage (gs://) or a local path, with a digest of the bytes loaded.

The digest names the model in cache keys (a new model must never serve an old model's answers),
so it comes from the bytes actually downloaded or read, never from generations or mtimes:
sha256 of b"memoserve-model-digest-v1", then for each file sorted by relative POSIX name: the
name's UTF-8 length (8 bytes big-endian), the name, and sha256(contents). A single file's name is
"" (renaming it changes nothing it computes): a gs:// object and a local copy of it have the same
digest, and so do a gs:// prefix and a local directory with the same layout.

GCS access uses Application Default Credentials (Workload Identity in a GKE pod) and never falls
back to anonymous access: missing credentials are an error that says so. The client library
itself uses the emulator (with anonymous credentials) when STORAGE_EMULATOR_HOST is set.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePath, PurePosixPath
from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    from google.cloud.storage import Blob, Client

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
"""Called with (bytes done, bytes total) while a model is downloaded or read."""

_CHUNK = 1 << 20
_DIGEST_TAG = b"memoserve-model-digest-v1"
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_MAX_MESSAGE = 600


class ModelLoadError(Exception):
    """The model cannot be fetched or loaded. The message is one line (logs, status conditions)."""

    def __init__(self, message: str) -> None:
        # Framework messages span lines (and xgboost appends a native stack trace).
        message = " ".join(message.split("Stack trace:")[0].split())
        if len(message) > _MAX_MESSAGE:
            message = message[: _MAX_MESSAGE - 3] + "..."
        super().__init__(message)


@dataclass(frozen=True)
class ModelFiles:
    path: Path  # the local file or directory to load
    digest: str  # hex sha256 of the bytes loaded (see the module docstring)


def fetch_model(uri: str, dest_dir: Path, progress: Progress | None = None) -> ModelFiles:
    """Make the model at ``uri`` available locally and digest it. Blocking: run it in a thread.

    ``uri`` is ``gs://bucket/object`` (one object, if it exists), ``gs://bucket/prefix[/]`` (every
    object under the prefix), a local file or directory, or ``file:///path``. gs:// models are
    downloaded under ``dest_dir``, one directory per URI and object generations, reused when
    present; local paths are used where they are.
    """
    if uri.startswith("gs://"):
        return _fetch_gcs(uri, dest_dir, progress)
    path = _local_path(uri)
    if not path.exists():
        raise ModelLoadError(f"cannot read {uri}: no such file or directory")
    return ModelFiles(path=path.absolute(), digest=_digest_local(uri, path, progress))


# --- local files ---------------------------------------------------------------------------------


def _local_path(uri: str) -> Path:
    if uri.startswith("file://"):
        parts = urlsplit(uri)
        if parts.netloc not in ("", "localhost"):
            raise ModelLoadError(f"cannot read {uri}: file:// names a local path: file:///path")
        return Path(unquote(parts.path))
    if _SCHEME.match(uri):
        raise ModelLoadError(f"cannot read {uri}: unsupported scheme (gs://, file://, a path)")
    return Path(uri)


def _digest_local(label: str, path: Path, progress: Progress | None) -> str:
    if path.is_file():
        files = [("", path)]
    else:
        files = [
            (PurePath(os.path.relpath(os.path.join(root, name), path)).as_posix(), Path(root, name))
            for root, _, names in os.walk(path)
            for name in names
        ]
        if not files:
            raise ModelLoadError(f"cannot read {label}: the directory {path} is empty")
    try:
        counter = _Counter(sum(file.stat().st_size for _, file in files), progress)
        entries = []
        for name, file in files:
            with file.open("rb") as stream:
                hasher = _HashingWriter(None, counter)
                while chunk := stream.read(_CHUNK):
                    hasher.write(chunk)
            entries.append((name, hasher.digest()))
    except OSError as exc:
        raise ModelLoadError(f"cannot read {label}: {exc}") from exc
    return _combine(entries)


def _combine(entries: Iterable[tuple[str, bytes]]) -> str:
    digest = hashlib.sha256(_DIGEST_TAG)
    for name, file_digest in sorted(entries):
        encoded = name.encode()
        digest.update(len(encoded).to_bytes(8, "big") + encoded + file_digest)
    return digest.hexdigest()


class _Counter:
    """Counts bytes; reports to ``progress`` every MiB or so (downloads write 8 KiB at a time)."""

    def __init__(self, total: int, progress: Progress | None) -> None:
        self.total, self.done, self._reported, self._progress = total, 0, 0, progress

    def add(self, count: int) -> None:
        self.done += count
        if self._progress is not None and (
            abs(self.done - self._reported) >= _CHUNK or self.done >= self.total
        ):
            self._reported = self.done
            self._progress(self.done, self.total)


class _HashingWriter:
    """Hashes (and counts, and writes to ``file`` if any) what passes through ``write``."""

    def __init__(self, file: BinaryIO | None, counter: _Counter) -> None:
        self._file, self._counter = file, counter
        self._hash, self._written = hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        if self._file is not None:
            self._file.write(data)
        self._hash.update(data)
        self._written += len(data)
        self._counter.add(len(data))
        return len(data)

    def tell(self) -> int:
        return self._written

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        # The GCS client rewinds to 0 and starts over when the server transcodes a gzip-encoded
        # object; any other seek would make the hash disagree with the file, so refuse it.
        if (offset, whence) != (0, os.SEEK_SET) or self._file is None:
            raise OSError("only a rewind to the start is supported")
        self._file.seek(0)
        self._file.truncate()
        self._counter.add(-self._written)
        self._hash, self._written = hashlib.sha256(), 0
        return 0

    def digest(self) -> bytes:
        return self._hash.digest()


# --- Cloud Storage -------------------------------------------------------------------------------


def _fetch_gcs(uri: str, dest_dir: Path, progress: Progress | None) -> ModelFiles:
    bucket_name, _, name = uri.removeprefix("gs://").partition("/")
    if not bucket_name:
        raise ModelLoadError(f"cannot read {uri}: no bucket name")
    try:
        client = _client(uri)
        blobs, prefix = _resolve(uri, client, bucket_name, name)
        return _download(uri, blobs, prefix, dest_dir, progress)
    except ModelLoadError:
        raise
    except Exception as exc:  # the client raises api_core, google.auth and requests errors
        raise _gcs_error(uri, bucket_name, exc) from exc


def _client(uri: str) -> Client:
    from google.auth.exceptions import DefaultCredentialsError
    from google.cloud import storage

    emulator = os.environ.get("STORAGE_EMULATOR_HOST")
    if emulator:
        log.info("reading %s from the Cloud Storage emulator at %s", uri, emulator)
    try:
        return storage.Client()
    except DefaultCredentialsError as exc:
        raise ModelLoadError(
            f"cannot read {uri}: no Google Cloud credentials found (Application Default "
            "Credentials: Workload Identity on GKE, GOOGLE_APPLICATION_CREDENTIALS, or "
            f"`gcloud auth application-default login`): {exc}"
        ) from exc


def _resolve(
    uri: str, client: Client, bucket_name: str, name: str
) -> tuple[list[Blob], str | None]:
    """The objects to download, and the prefix to strip from their names (None: one object)."""
    from google.api_core.exceptions import NotFound

    bucket = client.bucket(bucket_name)
    if name and not name.endswith("/"):
        blob = bucket.get_blob(name)  # None when the object (or the bucket) does not exist
        if blob is not None:
            return [blob], None
    prefix = name.rstrip("/") + "/" if name else ""
    try:
        # Zero-byte "folder" placeholders that consoles create are not model files.
        blobs = [b for b in client.list_blobs(bucket, prefix=prefix) if not b.name.endswith("/")]
    except NotFound as exc:
        raise ModelLoadError(f"cannot read {uri}: bucket {bucket_name} does not exist") from exc
    if not blobs:
        raise ModelLoadError(
            f"cannot read {uri}: no such object, and no objects under gs://{bucket_name}/{prefix}"
        )
    return blobs, prefix


def _download(
    uri: str, blobs: list[Blob], prefix: str | None, dest_dir: Path, progress: Progress | None
) -> ModelFiles:
    single = prefix is None
    names = [
        PurePosixPath(b.name).name if prefix is None else _relative(uri, b.name, prefix)
        for b in blobs
    ]
    key = hashlib.sha256(uri.encode())
    for blob in blobs:
        key.update(f"\0{blob.name}\0{blob.generation}".encode())
    final = dest_dir / f"gcs-{key.hexdigest()[:24]}"
    if final.is_dir():  # downloaded before (e.g. by this pod before a container restart)
        log.info("reusing %s downloaded to %s", uri, final)
        path = final / names[0] if single else final
        return ModelFiles(path=path, digest=_digest_local(uri, path, progress))

    dest_dir.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=dest_dir))
    try:
        counter = _Counter(sum(b.size or 0 for b in blobs), progress)
        entries = []
        for blob, local_name in zip(blobs, names, strict=True):
            target = partial / local_name
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("wb") as file:
                writer = _HashingWriter(file, counter)
                # Blobs carry the generation they were listed at, so every object is read as it
                # was listed even if overwritten meanwhile; the client verifies the checksum.
                blob.download_to_file(writer)
            entries.append(("" if single else local_name, writer.digest()))
        try:
            partial.rename(final)
        except OSError:
            if not final.is_dir():
                raise
            shutil.rmtree(partial)  # another process finished the same generations first
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    log.info("downloaded %s (%d bytes) to %s", uri, counter.done, final)
    return ModelFiles(path=final / names[0] if single else final, digest=_combine(entries))


def _relative(uri: str, name: str, prefix: str) -> str:
    relative = name[len(prefix) :]
    if relative.startswith("/") or any(part in ("", ".", "..") for part in relative.split("/")):
        raise ModelLoadError(f"cannot read {uri}: object name {name!r} cannot be a local file name")
    return relative


def _gcs_error(uri: str, bucket: str, exc: Exception) -> ModelLoadError:
    from google.api_core import exceptions as api
    from google.auth import exceptions as auth

    if isinstance(exc, auth.RefreshError | auth.TransportError):
        return ModelLoadError(
            f"cannot read {uri}: cannot get an access token from the Google Cloud credentials "
            f"(on GKE: is Workload Identity set up for the pod's service account?): {exc}"
        )
    if isinstance(exc, api.Forbidden):
        return ModelLoadError(
            f"cannot read {uri}: permission denied; the identity needs storage.objects.get and "
            f"storage.objects.list on bucket {bucket} (roles/storage.objectViewer): {exc.message}"
        )
    if isinstance(exc, api.NotFound):  # listed, then gone before it was downloaded
        return ModelLoadError(f"cannot read {uri}: an object disappeared while downloading: {exc}")
    return ModelLoadError(f"cannot read {uri}: {type(exc).__name__}: {exc}")
