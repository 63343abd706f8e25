"""gs:// without credentials fails with an error that says so, quickly, never anonymously."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from memoserve_dev.ports import free_port
from memoserve_serving.storage import ModelLoadError, fetch_model


def test_a_missing_credentials_file_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "no-such-key.json"))
    with pytest.raises(ModelLoadError, match="no Google Cloud credentials") as caught:
        fetch_model("gs://models/iris/model.onnx", tmp_path)
    assert "gs://models/iris/model.onnx" in str(caught.value)
    assert "no-such-key.json" in str(caught.value)


# A fresh interpreter: google-auth reads some of its settings when it is imported.
_PROBE = """
import sys
from pathlib import Path
from memoserve_serving.storage import ModelLoadError, fetch_model
try:
    fetch_model("gs://models/iris/", Path(sys.argv[1]))
except ModelLoadError as exc:
    print(exc)
else:
    print("fetched without credentials")
"""


def test_no_credentials_at_all_is_an_error_not_anonymous_access(tmp_path: Path) -> None:
    closed = f"127.0.0.1:{free_port()}"  # no metadata server: nothing listens there
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"GOOGLE_APPLICATION_CREDENTIALS", "STORAGE_EMULATOR_HOST", "NO_GCE_CHECK"}
        and not key.startswith("CLOUDSDK_")
    }
    env |= {
        "HOME": str(tmp_path),  # no gcloud application-default credentials either
        "CLOUDSDK_CONFIG": str(tmp_path / "gcloud"),
        "GCE_METADATA_HOST": closed,
        "GCE_METADATA_IP": closed,
        "GCE_METADATA_DETECT_RETRIES": "1",  # one refused connection, not three with back-off
    }
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, str(tmp_path / "dl")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert time.monotonic() - started < 15
    message = result.stdout.strip()
    assert message.startswith("cannot read gs://models/iris/: no Google Cloud credentials found")
    assert "\n" not in message
