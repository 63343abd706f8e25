"""fetch_model on gs:// URIs, through the real google-cloud-storage client and the GCS emulator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from memoserve_serving.storage import ModelLoadError, fetch_model

MODEL = b"\x08\x07" + bytes(range(256)) * 40  # any bytes will do; the emulator stores them as-is


def _upload(bucket: Any, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        bucket.blob(name).upload_from_string(data)


def test_one_object_is_downloaded_as_a_file(gcs_bucket: Any, tmp_path: Path) -> None:
    _upload(gcs_bucket, {"iris/model.onnx": MODEL, "iris/model.onnx.txt": b"not this"})
    files = fetch_model("gs://models/iris/model.onnx", tmp_path / "dl")
    assert files.path.name == "model.onnx"
    assert files.path.is_relative_to(tmp_path / "dl")
    assert files.path.read_bytes() == MODEL
    assert [p.name for p in files.path.parent.iterdir()] == ["model.onnx"]


def test_a_prefix_is_downloaded_as_a_directory(gcs_bucket: Any, tmp_path: Path) -> None:
    _upload(
        gcs_bucket,
        {
            "iris/": b"",  # a console "folder" placeholder: not a file
            "iris/model.onnx": MODEL,
            "iris/extra/config.json": b"{}",
            "iris-other/model.onnx": b"a sibling prefix, not part of iris/",
        },
    )
    for uri in ("gs://models/iris", "gs://models/iris/"):
        files = fetch_model(uri, tmp_path / "dl")
        found = sorted(str(p.relative_to(files.path)) for p in files.path.rglob("*") if p.is_file())
        assert found == ["extra/config.json", "model.onnx"]
        assert (files.path / "model.onnx").read_bytes() == MODEL


def test_the_whole_bucket_is_a_prefix(gcs_bucket: Any, tmp_path: Path) -> None:
    _upload(gcs_bucket, {"model.onnx": MODEL})
    files = fetch_model("gs://models", tmp_path / "dl")
    assert files.path.is_dir()
    assert (files.path / "model.onnx").read_bytes() == MODEL


def test_digest_equals_the_local_digest_of_the_same_bytes(gcs_bucket: Any, tmp_path: Path) -> None:
    layout = {"model.onnx": MODEL, "sub/vocab.txt": b"a\nb\n"}
    _upload(gcs_bucket, {f"m/{name}": data for name, data in layout.items()})
    for name, data in layout.items():
        (tmp_path / "local" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "local" / name).write_bytes(data)

    remote_file = fetch_model("gs://models/m/model.onnx", tmp_path / "dl")
    assert remote_file.digest == fetch_model(str(tmp_path / "local/model.onnx"), tmp_path).digest
    remote_dir = fetch_model("gs://models/m/", tmp_path / "dl")
    assert remote_dir.digest == fetch_model(str(tmp_path / "local"), tmp_path).digest


def test_a_changed_byte_is_a_new_download_and_a_new_digest(gcs_bucket: Any, tmp_path: Path) -> None:
    _upload(gcs_bucket, {"m/model.onnx": MODEL})
    before = fetch_model("gs://models/m/model.onnx", tmp_path / "dl")
    again = fetch_model("gs://models/m/model.onnx", tmp_path / "dl")
    assert again == before  # same generation: the earlier download is reused

    _upload(gcs_bucket, {"m/model.onnx": MODEL[:-1] + b"\x00"})  # a new generation
    after = fetch_model("gs://models/m/model.onnx", tmp_path / "dl")
    assert after.digest != before.digest
    assert after.path != before.path
    assert after.path.read_bytes()[-1:] == b"\x00"


def test_no_partial_download_is_left_behind(gcs_bucket: Any, tmp_path: Path) -> None:
    _upload(gcs_bucket, {"m/model.onnx": MODEL, "m/sub/x": b"x"})
    files = fetch_model("gs://models/m", tmp_path / "dl")
    assert list((tmp_path / "dl").iterdir()) == [files.path]


def test_progress_counts_every_downloaded_byte(gcs_bucket: Any, tmp_path: Path) -> None:
    _upload(gcs_bucket, {"m/a": MODEL, "m/b": b"12345"})
    calls: list[tuple[int, int]] = []
    fetch_model("gs://models/m", tmp_path / "dl", progress=lambda d, t: calls.append((d, t)))
    assert calls[-1] == (len(MODEL) + 5, len(MODEL) + 5)


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("gs://no-such-bucket/model.onnx", "bucket no-such-bucket does not exist"),
        ("gs://no-such-bucket/", "bucket no-such-bucket does not exist"),
        (
            "gs://models/missing.onnx",
            "no such object, and no objects under gs://models/missing.onnx/",
        ),
        ("gs://models/empty/", "no objects under gs://models/empty/"),
        ("gs://", "no bucket name"),
        ("gs://models/unsafe", "cannot be a local file name"),
    ],
)
def test_missing_things_are_one_line_errors_naming_the_uri(
    gcs_bucket: Any, tmp_path: Path, uri: str, message: str
) -> None:
    _upload(gcs_bucket, {"other/model.onnx": MODEL, "unsafe/a//b": b"x"})
    with pytest.raises(ModelLoadError, match=message) as caught:
        fetch_model(uri, tmp_path / "dl")
    assert uri in str(caught.value)
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "dl").exists() or not any((tmp_path / "dl").iterdir())
