"""checkov, an outside scanner, over everything memoserve puts in a cluster.

It reads manifests/base as kustomize builds it (kustomize_render) and every manifests/examples
InferenceService rendered into the objects the operator applies (``memoserve render``'s
builders), in namespace ``ml``: the operator writes children into their InferenceService's
namespace, which the user picks, and ``render`` says ``default`` only for lack of one.

Every failed check must be in data/checkov-allowlist.yaml with the reason it stays, and every
entry there must still match a finding, so the list says exactly what remains. checkov runs from
its own virtualenv (``make tools``, which ``make test`` runs), offline (``--skip-download``).
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from memoserve_operator.render import render
from tests.operator import kustomize_render
from tests.operator.helpers import DATA, EXAMPLES, ROOT, SETTINGS

CHECKOV = ROOT / ".local" / "checkov" / "bin" / "checkov"
ALLOWLIST = DATA / "checkov-allowlist.yaml"
BASE = ROOT / "manifests" / "base"
NAMESPACE = "ml"


@dataclass(frozen=True)
class Finding:
    check: str
    resource: str  # SOURCE/KIND/NAME (a pod template: Pod/<owner name>.<its labels>)
    title: str

    def __str__(self) -> str:
        return f"{self.check} {self.resource}: {self.title}"


@dataclass(frozen=True)
class Allowed:
    check: str
    resource: str  # a pattern over Finding.resource
    reason: str

    def matches(self, finding: Finding) -> bool:
        return finding.check == self.check and fnmatchcase(finding.resource, self.resource)


def write_rendered(directory: Path) -> list[str]:
    """The scanned files, one per source; returns the sources (``base``, ``examples/<stem>``)."""
    (directory / "examples").mkdir()
    sources = ["base"]
    base = kustomize_render.render(BASE)
    (directory / "base.yaml").write_text(yaml.safe_dump_all(base, sort_keys=False))
    for path in EXAMPLES:
        (directory / "examples" / path.name).write_text(render(path, SETTINGS, namespace=NAMESPACE))
        sources.append(f"examples/{path.stem}")
    return sources


def run_checkov(directory: Path) -> dict[str, Any]:
    if not CHECKOV.exists():
        pytest.fail(
            f"checkov is not installed ({CHECKOV.relative_to(ROOT)}): run `make tools`",
            pytrace=False,
        )
    command = [str(CHECKOV), "--directory", str(directory), "--framework", "kubernetes"]
    command += ["--output", "json", "--soft-fail", "--skip-download"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        pytest.fail(f"checkov failed ({done.returncode}):\n{done.stderr[-3000:]}", pytrace=False)
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def source_of(result: dict[str, Any]) -> str:
    return str(result["file_path"]).strip("/").removesuffix(".yaml")


def resource_of(result: dict[str, Any]) -> str:
    """``Deployment.ml.iris`` in examples/minimal-cpu.yaml -> examples/minimal-cpu/Deployment/iris
    (the namespace is the source's: ml, or memoserve-system for the base)."""
    kind, _, name = str(result["resource"]).split(".", 2)
    return f"{source_of(result)}/{kind}/{name}"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    directory = tmp_path_factory.mktemp("checkov")
    sources = write_rendered(directory)
    report = run_checkov(directory)
    assert report["summary"]["parsing_errors"] == 0, report["summary"]
    results = report["results"]
    seen = {source_of(r) for r in results["passed_checks"] + results["failed_checks"]}
    assert seen == set(sources), "checkov did not read every rendered file"
    return report


@pytest.fixture(scope="module")
def findings(report: dict[str, Any]) -> list[Finding]:
    return sorted(
        {
            Finding(r["check_id"], resource_of(r), r["check_name"])
            for r in report["results"]["failed_checks"]
        },
        key=str,
    )


@cache
def allowlist() -> tuple[Allowed, ...]:
    entries = yaml.safe_load(ALLOWLIST.read_text()) or []
    return tuple(Allowed(e["check"], e["resource"], e["reason"]) for e in entries)


def test_allowlist_entries_are_complete_and_unique() -> None:
    entries = yaml.safe_load(ALLOWLIST.read_text())
    for entry in entries:
        assert set(entry) == {"check", "resource", "reason"}, entry
        assert re.fullmatch(r"CKV2?_K8S_\d+", entry["check"]), entry
        reason = entry["reason"].strip()
        assert len(reason.split()) >= 8, f"give the reason in a sentence or two: {entry}"
        assert reason.endswith("."), entry
    keys = [(e["check"], e["resource"]) for e in entries]
    assert len(keys) == len(set(keys)), "duplicate entries"


def test_every_finding_is_allowed_with_a_reason(findings: list[Finding]) -> None:
    unexplained = [f for f in findings if not any(a.matches(f) for a in allowlist())]
    assert not unexplained, (
        f"checkov findings missing from {ALLOWLIST.relative_to(ROOT)} (fix them, or add each "
        "with the reason it stays):\n" + "\n".join(map(str, unexplained))
    )


def test_every_allowlist_entry_still_matches_a_finding(findings: list[Finding]) -> None:
    stale = [a for a in allowlist() if not any(a.matches(f) for f in findings)]
    assert not stale, (
        f"{ALLOWLIST.relative_to(ROOT)} lists what checkov no longer finds (remove it):\n"
        + "\n".join(f"{a.check} {a.resource}" for a in stale)
    )


def test_checkov_checks_the_pod_security_fields(report: dict[str, Any]) -> None:
    """The scan is worth something: the serving and operator pods pass the checks on their
    security context (a checkov upgrade that stopped running them would show here)."""
    passed = {(r["check_id"], source_of(r)) for r in report["results"]["passed_checks"]}
    for check in ("CKV_K8S_20", "CKV_K8S_22", "CKV_K8S_23", "CKV_K8S_28", "CKV_K8S_31"):
        for source in ("base", "examples/gpu-l4-hpa-ingress"):
            assert (check, source) in passed, (check, source)
