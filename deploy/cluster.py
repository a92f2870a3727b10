"""A local cluster: N Chatzilla processes sharing rooms through Redis, behind nginx.

    .venv/bin/python deploy/cluster.py --port 8080 --redis-url redis://127.0.0.1:6379/0

Starts the processes on free loopback ports, writes an nginx configuration
(deploy/nginx.conf.template) with SockJS session stickiness into a temporary
folder, runs Debian's nginx in the foreground, prints one line with the URL
and one per process, and stops everything on SIGTERM or Ctrl-C. `make
cluster` runs it with the defaults. Exit status 2 with one line for a missing
nginx or a process that does not start.
"""

from __future__ import annotations

import argparse
import getpass
import os
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = Path(__file__).resolve().parent / "nginx.conf.template"


def start_chatzilla(redis_url: str, prefix: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chatzilla",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--redis-url",
            redis_url,
            "--redis-prefix",
            prefix,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    line = proc.stdout.readline()
    if "serving" not in line:
        proc.kill()
        raise SystemExit(f"cluster: a Chatzilla process did not start: {line.strip()!r}")
    return proc, line.split()[3].rstrip("/")


def nginx_config(folder: Path, port: int, urls: list[str]) -> Path:
    for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (folder / sub).mkdir()
    upstreams = "\n".join(f"        server {url.split('//')[1]};" for url in urls)
    text = string.Template(TEMPLATE.read_text()).safe_substitute(
        prefix=folder, port=port, user=getpass.getuser(), upstreams=upstreams
    )
    path = folder / "nginx.conf"
    path.write_text(text)
    return path


def listening(front: subprocess.Popen, port: int, within: float = 30.0) -> bool:
    """Whether nginx accepts connections on `port` before it exits or `within` seconds pass.

    "Serving" is printed only once a client can connect: a fixed pause was
    outrun on a loaded CI machine (the first connection was refused).
    """
    deadline = time.monotonic() + within
    while front.poll() is None and time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080, help="nginx's port (default 8080)")
    parser.add_argument("--processes", type=int, default=2, help="Chatzilla processes (default 2)")
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--redis-prefix", default="chatzilla-cluster")
    args = parser.parse_args()

    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if nginx is None:
        print("cluster: nginx is not installed (Debian: apt-get install nginx-light)", file=sys.stderr)
        return 2
    children: list[subprocess.Popen] = []
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    with tempfile.TemporaryDirectory(prefix="chatzilla-nginx-") as tmp:
        try:
            urls = []
            for _ in range(args.processes):
                proc, url = start_chatzilla(args.redis_url, args.redis_prefix)
                children.append(proc)
                urls.append(url)
            conf = nginx_config(Path(tmp), args.port, urls)
            front = subprocess.Popen([nginx, "-c", str(conf), "-g", "daemon off;"])
            children.append(front)
            if not listening(front, args.port):
                print(f"cluster: nginx did not start (see {tmp}/error.log)", file=sys.stderr)
                return 2
            print(f"Chatzilla cluster is serving http://127.0.0.1:{args.port}/ through nginx", flush=True)
            for url in urls:
                print(f"  process {url}/", flush=True)
            while not stop and all(child.poll() is None for child in children):
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass
        finally:
            for child in reversed(children):
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM if child.args[0] != nginx else signal.SIGQUIT)
            for child in children:
                try:
                    child.wait(10)
                except subprocess.TimeoutExpired:
                    child.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
