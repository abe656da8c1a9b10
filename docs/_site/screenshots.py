"""Build the site, serve it on localhost and photograph pages with headless Chromium.

    python docs/_site/screenshots.py OUT_DIR [--page PATH ...] [--width 1280] [--height 1600]

writes one PNG per page to ``OUT_DIR`` (``home.png``, ``reference_noisy_dyn.png``, ...): by
default the home page, a how-to guide, an API page, a results page, the benchmarks overview
and one benchmark run.
``PATH`` is a path inside the site (``reference/basis_ode/``). Needs Chromium (Debian:
``apt-get install chromium``) and the docs extra (``pip install -e ".[docs]"``).

The site serves its own copy of MathJax (from the docs extra, ``docs/_site/hooks.py``), so the
maths renders here without internet as it does for readers offline.
"""

from __future__ import annotations

import argparse
import http.server
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGES = (
    "",
    "howto_noise/",
    "reference/noisy_dyn/",
    "results/basis_ode/wsj_tagging_cpu/",
    "benchmarks/",
    "benchmarks/cpu_full/",
)


def browser() -> str:
    """The path of a Chromium-like browser, or exit naming how to install one."""
    for name in ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    sys.exit("error: no Chromium found; install it with: apt-get install -y chromium")


def build(site: Path) -> None:
    """``mkdocs build`` of the repository into ``site`` (strict, as the tests build it)."""
    env = dict(os.environ, DISABLE_MKDOCS_2_WARNING="true", NO_MKDOCS_2_WARNING="1")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    cmd = [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(site)]
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode:
        sys.exit(f"error: mkdocs build failed:\n{(result.stdout + result.stderr)[-4000:]}")


def serve(site: Path) -> tuple[http.server.ThreadingHTTPServer, int]:
    """A quiet HTTP server of ``site`` on a free localhost port, in a thread."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", port), partial(Quiet, directory=str(site))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, port


def shoot(chrome: str, url: str, png: Path, width: int, height: int, profile: Path) -> None:
    """One screenshot; MathJax and the page's scripts get 10 s of virtual time."""
    cmd = [
        chrome,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
        "--virtual-time-budget=10000",
        f"--screenshot={png}",
        url,
    ]
    subprocess.run(cmd, capture_output=True, timeout=120)
    if not png.is_file():
        sys.exit(f"error: Chromium wrote no screenshot of {url}")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("out_dir", type=Path, help="folder the PNGs are written to")
    p.add_argument("--page", action="append", help="a path inside the site (repeatable)")
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=1600)
    args = p.parse_args(argv)
    chrome = browser()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        build(site)
        server, port = serve(site)
        try:
            for page in args.page or PAGES:
                name = re.sub(r"[^\w.-]+", "_", page.strip("/")) or "home"
                png = args.out_dir / f"{name}.png"
                url = f"http://127.0.0.1:{port}/{page.lstrip('/')}"
                shoot(chrome, url, png, args.width, args.height, Path(tmp) / "profile")
                print(png)
        finally:
            server.shutdown()


if __name__ == "__main__":
    main()
