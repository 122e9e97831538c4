"""Constraints for installing this provider into an existing Airflow image (the Dockerfile runs it).

    python merge_constraints.py AIRFLOW_CONSTRAINTS OUR_CONSTRAINTS > merged.txt

Airflow's own constraints for the image's version come first and win: every package they pin keeps
that pin, so nothing already in the image moves. Our `constraints.txt` adds pins only for packages
Airflow's file does not name (our own dependencies Airflow does not ship). Names compare as PEP 503
normalises them (`Foo_Bar` is `foo-bar`).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from pathlib import Path

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def package_name(line: str) -> str | None:
    """The normalised package a constraints line pins, or None for comments, blanks and options."""
    text = line.split("#", 1)[0].strip()
    if not text or text.startswith("-"):
        return None
    match = _NAME.match(text)
    return re.sub(r"[-_.]+", "-", match.group(1)).lower() if match else None


def merge(airflow_lines: Iterable[str], our_lines: Iterable[str]) -> list[str]:
    airflow = [line.rstrip("\n") for line in airflow_lines]
    pinned = {name for name in map(package_name, airflow) if name}
    ours = [line.rstrip("\n") for line in our_lines if (name := package_name(line)) and name not in pinned]
    return [*airflow, "# Not in Airflow's constraints: this project's pins (constraints.txt)", *ours]


def main(argv: list[str]) -> int:
    airflow_file, our_file = map(Path, argv)
    sys.stdout.write(
        "\n".join(merge(airflow_file.read_text().splitlines(), our_file.read_text().splitlines())) + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
