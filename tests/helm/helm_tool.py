"""helm, built from its Go module by scripts/build-helm.sh (`make tools`), once per machine."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = ROOT / "scripts" / "build-helm.sh"
CHART = ROOT / "charts" / "memoserve-operator"
RELEASE, NAMESPACE = "memoserve-operator", "memoserve-system"


def helm_binary() -> Path:
    """The cached binary; a missing one is a failure (make test builds it), never a skip."""
    done = subprocess.run(
        ["bash", str(BUILD_SCRIPT)],
        capture_output=True,
        text=True,
        env=os.environ | {"MEMOSERVE_HELM_NO_BUILD": "1"},
        check=False,
    )
    assert done.returncode == 0, f"helm is not built (make tools): {done.stderr}"
    return Path(done.stdout.splitlines()[-1])


def helm(binary: Path, *args: str, home: Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """helm with its caches, config and data under ``home`` (never the user's)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("HELM_")}
    env |= {
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }
    return subprocess.run(
        [str(binary), *args], capture_output=True, text=True, env=env, check=False, **kwargs
    )


def rendered(
    binary: Path, home: Path, *values: str, values_file: Path | None = None
) -> list[dict[str, Any]]:
    """``helm template`` of the chart (with its CRDs) as objects; ``values``: --set arguments."""
    sets = [arg for value in values for arg in ("--set", value)]
    if values_file is not None:
        sets += ["--values", str(values_file)]
    done = helm(
        binary,
        "template",
        RELEASE,
        str(CHART),
        "--namespace",
        NAMESPACE,
        "--include-crds",
        *sets,
        home=home,
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc is not None]
