"""The platform files, and the build a Heroku-style platform runs, from a
clean directory: ``pip install .`` into a fresh virtualenv and ``npm ci``,
then the Procfile's release and web commands with ``PORT`` and
``DATABASE_URL``, as a dyno runs them."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from chatzilla.settings import SPECS

from .helpers import free_port
from .test_cli import clean_env

ROOT = Path(__file__).resolve().parent.parent


def procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip())


def test_procfile_releases_with_migrations_and_serves():
    assert procfile() == {"release": "python -m chatzilla migrate", "web": "python -m chatzilla"}


def test_python_version_is_pinned_for_the_buildpack():
    # The Python buildpack reads .python-version: a major.minor it keeps patched.
    assert (ROOT / ".python-version").read_text().strip() == f"{sys.version_info[0]}.{sys.version_info[1]}"


def test_app_json_names_buildpacks_postgres_and_real_settings():
    app = json.loads((ROOT / "app.json").read_text())
    assert [b["url"] for b in app["buildpacks"]] == ["heroku/nodejs", "heroku/python"]
    assert {"plan": "heroku-postgresql", "as": "DATABASE"} in app["addons"]
    known = {var for spec in SPECS for var in spec.env}
    for name, entry in app["env"].items():
        assert name in known, f"app.json sets {name}, which no setting reads"
        assert entry["description"], name
        assert entry.get("required") is False, name


def _files_in_git() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [name for name in listed.split("\0") if name and (ROOT / name).is_file()]


def _pip_for(python: Path) -> list[str]:
    """Makes a fresh virtualenv for ``python``; returns the pip command that
    installs into it. As the Makefile does: where the host's pip can install
    into another environment (``--python``, pip 22.3 on), the venv has no pip
    of its own (ensurepip byte-compiles a whole pip: 20 s of a loaded
    machine, against 2 s); else it gets one."""
    host = [sys._base_executable, "-m", "pip"]  # type: ignore[attr-defined]
    venv = python.parent.parent
    if subprocess.run([*host, "--python", sys.executable, "--version"], capture_output=True).returncode == 0:
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
        return [*host, "--python", str(python)]
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    return [str(python), "-m", "pip"]


@pytest.mark.slow
def test_a_clean_build_serves_the_page_and_the_chat(tmp_path, empty_database_url):
    """The slow one (a fresh virtualenv): the build a platform runs."""
    app = tmp_path / "app"
    for name in _files_in_git():
        (app / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, app / name)
    env = clean_env()
    python = app / ".heroku-venv" / "bin" / "python"
    pip = [*_pip_for(python), "install", "--quiet", "--disable-pip-version-check", "--no-compile", "."]
    subprocess.run(pip, cwd=app, env=env, check=True, timeout=600)
    npm = ["npm", "ci", "--omit=dev", "--no-audit", "--no-fund"]
    subprocess.run(npm, cwd=app, env=env, check=True, timeout=600, capture_output=True)
    port = free_port()
    dyno = {**env, "PATH": f"{python.parent}{os.pathsep}{env['PATH']}", "PORT": str(port)}
    dyno["DATABASE_URL"] = empty_database_url
    commands = procfile()
    release = subprocess.run(
        shlex.split(commands["release"]), cwd=app, env=dyno, capture_output=True, text=True, timeout=60
    )
    assert release.returncode == 0, release.stderr
    web = subprocess.Popen(
        shlex.split(commands["web"]),
        cwd=app,
        env=dyno,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert web.stdout is not None
        line = web.stdout.readline()
        assert f":{port}/" in line, line
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(base + "/", timeout=5) as page:
                    assert page.status == 200 and b"<html" in page.read().lower()
                break
            except OSError:
                assert time.monotonic() < deadline, "no page"
                time.sleep(0.2)
        with urllib.request.urlopen(base + "/chat/info", timeout=5) as info:
            assert json.load(info)["websocket"] is True
        with urllib.request.urlopen(base + "/vendor/sockjs/sockjs.min.js", timeout=5) as bundle:
            assert bundle.status == 200
        with urllib.request.urlopen(base + "/healthz", timeout=5) as health:
            assert json.load(health)["status"] == "ok"
    finally:
        web.terminate()
        web.wait(15)


pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")
