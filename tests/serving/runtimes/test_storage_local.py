"""fetch_model on local paths: files, directories, file:// URIs, and the digest they get."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from memoserve_serving.storage import ModelLoadError, fetch_model


def _tree(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def test_a_file_is_used_in_place(tmp_path: Path) -> None:
    model = tmp_path / "model.onnx"
    model.write_bytes(b"model bytes")
    files = fetch_model(str(model), tmp_path / "downloads")
    assert files.path == model
    assert len(files.digest) == 64
    assert not (tmp_path / "downloads").exists()


def test_file_uri_and_plain_path_agree(tmp_path: Path) -> None:
    model = tmp_path / "a model.onnx"
    model.write_bytes(b"model bytes")
    plain = fetch_model(str(model), tmp_path)
    uri = fetch_model("file://" + str(model).replace(" ", "%20"), tmp_path)
    assert uri == plain


def test_a_file_digest_depends_on_its_bytes_not_its_name(tmp_path: Path) -> None:
    first, renamed, changed = tmp_path / "a.onnx", tmp_path / "b.onnx", tmp_path / "c.onnx"
    first.write_bytes(b"\x00" * 1000)
    renamed.write_bytes(b"\x00" * 1000)
    changed.write_bytes(b"\x00" * 999 + b"\x01")
    digests = [fetch_model(str(p), tmp_path).digest for p in (first, renamed, changed)]
    assert digests[0] == digests[1] != digests[2]
    assert digests[0] == fetch_model(str(first), tmp_path).digest  # stable


def test_a_directory_digest_covers_names_and_bytes(tmp_path: Path) -> None:
    files = {"model.onnx": b"weights", "sub/config.json": b"{}"}
    base = fetch_model(str(_tree(tmp_path / "a", files)), tmp_path)
    assert base.path == tmp_path / "a"
    same = fetch_model(str(_tree(tmp_path / "b", files)), tmp_path)
    renamed = _tree(tmp_path / "c", {"model.onnx": b"weights", "sub/other.json": b"{}"})
    changed = _tree(tmp_path / "d", {"model.onnx": b"weightz", "sub/config.json": b"{}"})
    extra = _tree(tmp_path / "e", {**files, "README": b""})
    assert same.digest == base.digest
    others = {fetch_model(str(p), tmp_path).digest for p in (renamed, changed, extra)}
    assert len(others) == 3
    assert base.digest not in others


def test_digest_is_the_documented_formula(tmp_path: Path) -> None:
    # Pinned so that a refactoring cannot silently re-key every cache entry.
    _tree(tmp_path / "m", {"b.bin": b"B", "a/x.bin": b"A"})
    expected = hashlib.sha256(b"memoserve-model-digest-v1")
    for name, data in [("a/x.bin", b"A"), ("b.bin", b"B")]:
        expected.update(len(name).to_bytes(8, "big") + name.encode())
        expected.update(hashlib.sha256(data).digest())
    assert fetch_model(str(tmp_path / "m"), tmp_path).digest == expected.hexdigest()


def test_progress_reaches_the_total(tmp_path: Path) -> None:
    _tree(tmp_path / "m", {"a": b"x" * 3_000_000, "b": b"y" * 10})
    calls: list[tuple[int, int]] = []
    fetch_model(
        str(tmp_path / "m"), tmp_path, progress=lambda done, total: calls.append((done, total))
    )
    assert calls[-1] == (3_000_010, 3_000_010)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("{tmp}/missing.onnx", "no such file or directory"),
        ("file://{tmp}/missing", "no such file or directory"),
        ("file://somehost/{tmp}/m.onnx", "local path"),
        ("s3://bucket/model.onnx", "unsupported scheme"),
        ("{tmp}/empty", "is empty"),
    ],
)
def test_bad_local_uris_are_one_line_errors_naming_the_uri(
    tmp_path: Path, uri: str, message: str
) -> None:
    (tmp_path / "empty").mkdir()
    uri = uri.format(tmp=tmp_path)
    with pytest.raises(ModelLoadError, match=message) as caught:
        fetch_model(uri, tmp_path / "downloads")
    assert uri in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_rewound_download_is_hashed_from_the_restart(tmp_path: Path) -> None:
    # The GCS client rewinds its output to 0 and starts over for gzip-transcoded objects (the
    # emulator does not transcode, so this drives the writer the way the client does).
    from memoserve_serving.storage import _Counter, _HashingWriter

    calls: list[tuple[int, int]] = []
    with (tmp_path / "model").open("wb") as file:
        writer = _HashingWriter(file, _Counter(5, lambda done, total: calls.append((done, total))))
        writer.write(b"garbage that was transcoded")
        assert writer.seek(0) == 0
        writer.write(b"model")
        with pytest.raises(OSError, match="rewind"):
            writer.seek(3)
    assert (tmp_path / "model").read_bytes() == b"model"
    assert writer.digest() == hashlib.sha256(b"model").digest()
    assert calls[-1] == (5, 5)
