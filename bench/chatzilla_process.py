"""Start ``python -m chatzilla`` on a free loopback port, for the bench scripts.

(bench/run.py has its own ``Server``: it starts the floor and Node servers
too, with a start-up timeout, and scrubs the environment.)
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent


def start_chatzilla(
    *flags: str, stderr: IO | None = None, checkout: Path = ROOT, files: int | None = None
) -> tuple[subprocess.Popen, str]:
    """The process, and its URL (``http://127.0.0.1:PORT``, no trailing
    slash) once it says it is serving; exits the script if it does not.
    ``checkout``: the Chatzilla to run (another one, to compare); ``files``:
    the process's limit of open files."""

    def limit_files() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (files, files))

    proc = subprocess.Popen(
        [sys.executable, "-m", "chatzilla", "--host", "127.0.0.1", "--port", "0", *flags],
        cwd=checkout,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        # Load tests speak protocol 1 (anyone joins as any address). By the
        # environment, not a flag: a checkout from before --auth ignores it.
        env={**os.environ, "PYTHONUNBUFFERED": "1", "CHATZILLA_AUTH": "open"},
        preexec_fn=limit_files if files else None,
    )
    line = proc.stdout.readline()
    if "serving" not in line:
        proc.kill()
        raise SystemExit(f"a Chatzilla server did not start: {line!r}")
    return proc, line.split()[3].rstrip("/")
