"""The operator's JSON logs carry kopf's per-object records (they used to fail to serialise)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import kopf
import pytest

from memoserve_contract.logs import configure_logging
from memoserve_contract.settings import LogFormat
from memoserve_operator.main import QuietRoutine


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level


@pytest.mark.usefixtures("restore_logging")
def test_a_kopf_object_record_is_one_json_line(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", LogFormat.JSON)
    ref = {"apiVersion": "serving.memoserve.dev/v1alpha1", "kind": "InferenceService",
           "name": "iris", "namespace": "ml", "uid": "uid-1"}  # fmt: skip
    # What kopf's ObjectLogger passes with every record about an object.
    extra = {"settings": kopf.OperatorSettings(), "k8s_skip": False, "k8s_ref": ref}
    logging.getLogger("kopf.objects").info("Handler 'reconcile_service' succeeded.", extra=extra)

    err = capsys.readouterr().err
    assert "Logging error" not in err
    record = json.loads(err.strip())
    assert record["message"] == "Handler 'reconcile_service' succeeded."
    assert record["severity"] == "INFO"
    assert record["k8s_ref"] == ref
    assert "settings" not in record


@pytest.mark.usefixtures("restore_logging")
def test_routine_successes_are_quiet_and_the_rest_is_not(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("INFO", LogFormat.JSON)
    for handler in logging.getLogger().handlers:
        handler.addFilter(QuietRoutine())
    objects = logging.getLogger("kopf.objects")
    objects.info("Handler 'service_seen' succeeded.")
    objects.info("Handler 'child_changed' succeeded.")
    objects.info("Handler 'reconcile_service' succeeded.")
    objects.error("Handler 'service_seen' failed with an exception. Will retry.")

    lines = [json.loads(line)["message"] for line in capsys.readouterr().err.splitlines()]
    assert lines == [
        "Handler 'reconcile_service' succeeded.",
        "Handler 'service_seen' failed with an exception. Will retry.",
    ]
