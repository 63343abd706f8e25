"""Enough of the Dockerfile grammar to check the project's Dockerfiles without a Docker engine."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str
    heredoc: str  # the body of a <<'EOF' here-document, if any


def parse(path: Path) -> list[Instruction]:
    """Enough of the Dockerfile grammar for these files: comments, continuations, heredocs."""
    lines = iter(path.read_text().splitlines())
    instructions = []
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        while line.endswith("\\"):
            line = line[:-1] + " " + next(lines).strip()
        keyword, _, arguments = line.strip().partition(" ")
        body = []
        marker = re.search(r"<<'?(\w+)'?", arguments)
        if marker:
            for heredoc_line in lines:
                if heredoc_line == marker.group(1):
                    break
                body.append(heredoc_line)
        instructions.append(Instruction(keyword.upper(), arguments.strip(), "\n".join(body)))
    return instructions


def copied_sources(path: Path) -> list[str]:
    """The build-context paths the Dockerfile COPYs (not from other stages)."""
    sources: list[str] = []
    for instruction in parse(path):
        if instruction.keyword == "COPY" and not instruction.arguments.startswith("--from"):
            sources += instruction.arguments.split()[:-1]
    return sources
