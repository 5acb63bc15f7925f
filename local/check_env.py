"""Exit 0 if the running Python has every pinned requirement installed, else list what is missing.

Used by ``local/setup_env.sh`` so that a ready environment is a fast no-op (a check of installed
versions, not of timestamps). Standard library only: it runs before anything is installed.
"""
import importlib.metadata as md
import re
import sys
from pathlib import Path

_REQ = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(==|<|<=|>=)?\s*([^\s;#]*)")


def _version_tuple(text: str):
    return tuple(int(p) for p in re.findall(r"\d+", text)[:3])


def unmet(requirements: Path, extra: list) -> list:
    """Requirement lines of ``requirements`` (+ ``extra``) not satisfied in this environment."""
    missing = []
    lines = [ln for ln in requirements.read_text().splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    for line in lines + extra:
        name, op, want = _REQ.match(line).groups()
        try:
            have = md.version(name)
        except md.PackageNotFoundError:
            missing.append(f"{line.strip()} (not installed)")
            continue
        if op and want:
            ok = {"==": _version_tuple(have) == _version_tuple(want),
                  "<": _version_tuple(have) < _version_tuple(want),
                  "<=": _version_tuple(have) <= _version_tuple(want),
                  ">=": _version_tuple(have) >= _version_tuple(want)}[op]
            if not ok:
                missing.append(f"{line.strip()} (installed {have})")
    return missing


if __name__ == "__main__":
    problems = unmet(Path(sys.argv[1]), sys.argv[2:])
    for p in problems:
        print(f"  missing: {p}")
    sys.exit(1 if problems else 0)
