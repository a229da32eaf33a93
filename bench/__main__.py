"""Run benchmarks by name: ``python -m bench state_res``; with no name, run them all.

Each benchmark is a module of this package with a ``main(argv) -> int``; arguments after the
name are passed to it (``python -m bench state_res --help``).
"""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = {
    "state_res": "bench.state_res",
}


def main(argv: list[str]) -> int:
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        print("Benchmarks:", ", ".join(sorted(BENCHMARKS)))
        return 0
    if not argv:
        return max(_run(module, []) for module in BENCHMARKS.values())
    name, rest = argv[0], argv[1:]
    module = BENCHMARKS.get(name)
    if module is None:
        print(f"Unknown benchmark {name!r}; known: {', '.join(sorted(BENCHMARKS))}",
              file=sys.stderr)
        return 2
    return _run(module, rest)


def _run(module: str, argv: list[str]) -> int:
    result: int = importlib.import_module(module).main(argv)
    return result


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
