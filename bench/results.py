"""Where results go: ``bench/results/raw/<workload>.json`` (every sample, git-ignored), from
which bench/report.py writes ``results.json`` (the summary, committed), ``REPORT.md`` and the
plots. Runs with ``--quick`` (harness checks) go to ``bench/results/quick/`` instead, so that
they never replace a measurement.

A raw file holds, per implementation, the runs of its latest invocation, with the command,
date, parameters, machine and RocketNode revision. Re-running one implementation
(``--implementations rocketnode``) replaces only its runs, so RocketNode can be measured again
after a change against the Synapse figures already there.
"""

from __future__ import annotations

import contextlib
import datetime
import importlib.metadata
import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"
QUICK_DIR = RESULTS_DIR / "quick"


def output_dir(quick: bool) -> Path:
    """Where a report and its summary go: quick runs apart from measurements."""
    return QUICK_DIR if quick else RESULTS_DIR


def raw_dir(quick: bool) -> Path:
    return output_dir(quick) / "raw"
REPO = Path(__file__).resolve().parent.parent


def command(part: str, argv: list[str]) -> str:
    return " ".join(["python -m bench", part, *(shlex.quote(arg) for arg in argv)])


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _first_line_with(path: str, prefix: str) -> str:
    """The value of the first ``prefix`` line: after ``:`` (/proc files) or ``=`` (os-release)."""
    with contextlib.suppress(OSError), open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.startswith(prefix):
                value = line[len(prefix):].strip().lstrip(":=").strip()
                return value.strip('"')
    return "unknown"


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def git_revision() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, text=True,
                              capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src"], cwd=REPO,
                               text=True, capture_output=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" + uncommitted changes in src/" if dirty else "")


def fsync_ms(samples: int = 20) -> float:
    """Median time of a 4 KiB write + fsync in the temporary directory, where the servers'
    data lives (SQLite with synchronous=FULL pays about this per commit)."""
    times: list[float] = []
    handle, path = tempfile.mkstemp(prefix="rocketnode-bench-fsync-")
    try:
        for _ in range(samples):
            started = time.perf_counter()
            os.write(handle, b"\0" * 4096)
            os.fsync(handle)
            times.append((time.perf_counter() - started) * 1000)
    finally:
        os.close(handle)
        os.unlink(path)
    return round(statistics.median(times), 2)


def machine() -> dict[str, Any]:
    memory_kib = _first_line_with("/proc/meminfo", "MemTotal").split()[0]
    os_name = _first_line_with("/etc/os-release", "PRETTY_NAME")
    return {
        "cpu": _first_line_with("/proc/cpuinfo", "model name"),
        "cpus": os.cpu_count(),
        "memory_gib": round(int(memory_kib) / 1024 / 1024, 1) if memory_kib.isdigit() else None,
        "os": os_name,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "synapse": _version("matrix-synapse"),
        "aiohttp": _version("aiohttp"),
        "fsync_ms": fsync_ms(),
    }


def _finite(value: Any) -> Any:
    """JSON has no infinity or NaN: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def save_runs(workload: str, implementation: str, runs: list[dict[str, Any]],
              params: dict[str, Any], invocation: str) -> Path:
    """Replace ``implementation``'s runs of ``workload`` in its raw file."""
    directory = raw_dir(bool(params.get("quick")))
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{workload}.json"
    data = load(path) or {"workload": workload, "by_implementation": {}}
    data["by_implementation"][implementation] = _finite({
        "command": invocation, "date": now(), "params": params, "machine": machine(),
        "revision": git_revision(), "runs": runs,
    })
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    return path


def load(path: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data


def load_all(quick: bool = False) -> dict[str, dict[str, Any]]:
    """Every raw file, by workload name."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(raw_dir(quick).glob("*.json")):
        data = load(path)
        if data is not None:
            found[str(data.get("workload", path.stem))] = data
    return found


def save_state_res(versions: dict[str, Any], params: dict[str, Any], invocation: str) -> Path:
    """The state resolution benchmark's timings (both implementations in one process)."""
    directory = raw_dir(bool(params.get("quick")))
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "state_res.json"
    data = {"workload": "state_res", "command": invocation, "date": now(), "params": params,
            "machine": machine(), "revision": git_revision(), "versions": versions}
    path.write_text(json.dumps(_finite(data), indent=1) + "\n", encoding="utf-8")
    return path
