"""The golden files: each InferenceService in data/input/ and the exact objects it must produce in
data/output/. test_golden.py only compares; rewriting them is this command of its own, so that a
test run can never turn a regression into a new golden file:

    .venv/bin/python -m tests.operator.golden           # lists stale outputs; exit 1 if any
    .venv/bin/python -m tests.operator.golden --update  # rewrites them (= make golden)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from memoserve_operator.builders import build_all
from memoserve_operator.render import parse, to_yaml
from tests.operator.helpers import DATA, GOLDEN_ENDPOINTS, GOLDEN_INPUTS, SETTINGS, load

COMMAND = ".venv/bin/python -m tests.operator.golden --update"  # or: make golden


def build(path: Path) -> list[dict[str, Any]]:
    """What the operator applies for a golden input, given the endpoint its cache step learned."""
    return build_all(parse(load(path)), SETTINGS, redis=GOLDEN_ENDPOINTS.get(path.stem))


def output_of(path: Path) -> Path:
    return DATA / "output" / path.name


def stale() -> list[tuple[Path, str]]:
    """(output file, what it should hold) for every output that differs from its rendering."""
    found = []
    for path in GOLDEN_INPUTS:
        rendered, output = to_yaml(build(path)), output_of(path)
        if not output.exists() or output.read_text() != rendered:
            found.append((output, rendered))
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.operator.golden", description=__doc__)
    parser.add_argument("--update", action="store_true", help="rewrite the stale outputs")
    update = parser.parse_args(argv).update
    outdated = stale()
    for output, rendered in outdated:
        if update:
            output.write_text(rendered)
        print(f"{'rewrote' if update else 'stale'}: {output.relative_to(DATA.parents[2])}")
    if not outdated:
        print(f"all {len(GOLDEN_INPUTS)} golden outputs are current")
    return 1 if outdated and not update else 0


if __name__ == "__main__":
    sys.exit(main())
