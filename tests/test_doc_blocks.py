"""Every Python code block of the documentation runs, so that no example drifts from the API.

For each page of ``docs/*.md`` with a ```` ```python ```` block, all its blocks run in order in
one fresh interpreter, in an empty temporary folder (a block that needs a file writes it or
names one an earlier block wrote). A block the site includes from a script
(``--8<-- "howto/x.py:section"``, pymdownx.snippets) runs as that section of the script. Long
training is shortened in two documented ways (docs/getting_started.md, "Reading this
documentation locally"):

* the environment variable ``NOISY_BASIS_DOCS_QUICK=1``, which the how-to scripts read to train
  on less data for fewer epochs;
* in the pages' own blocks, ``epochs=N`` becomes at most 2 (with ``refine_at=(a, b, ...)``:
  the refinements at epochs 1, 2, ... and one epoch after the last).

A block that cannot run here (it needs a GPU, a cluster, a data set to download) says so on the
line before it, ``<!-- not-run: why -->``; a block without that line runs, so nothing is left
out silently. README.md's two examples run in ``tests/test_docs.py::test_readme_examples_run``,
and docs/getting_started.md repeats them verbatim (``test_getting_started_shows_the_readme_
examples``): here they are not run a second time.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import NamedTuple

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
QUICK = "NOISY_BASIS_DOCS_QUICK"

_FENCE = re.compile(r"^([ \t]*)```([\w+-]*)[^\n]*\n(.*?)^\1```[ \t]*$", re.M | re.S)
_NOT_RUN = re.compile(r"^\s*<!--\s*not-run:\s*(.*?)\s*-->\s*$")
_SNIPPET = re.compile(r'^--8<-- "([^":]+)(?::([\w-]+))?"\s*$', re.M)


class Block(NamedTuple):
    page: Path
    line: int
    code: str
    not_run: str | None  # the reason given, or None: it runs


def _section(path: Path, name: str | None) -> str:
    text = path.read_text()
    if name is None:
        return text
    m = re.search(
        rf"^# --8<-- \[start:{re.escape(name)}\]\n(.*?)^# --8<-- \[end:{re.escape(name)}\]",
        text,
        re.M | re.S,
    )
    assert m, f"{path.relative_to(ROOT)} has no section {name!r}"
    return m.group(1)


def _expand(code: str) -> str:
    """A snippet line replaced by the text it includes (base path: docs/, as in mkdocs.yml)."""
    return _SNIPPET.sub(lambda m: _section(DOCS / m.group(1), m.group(2)).rstrip("\n"), code)


def python_blocks(page: Path) -> list[Block]:
    """The ```` ```python ```` blocks of a page, in order, snippets expanded."""
    text = page.read_text()
    out = []
    for m in _FENCE.finditer(text):
        if m.group(2) != "python":
            continue
        line = text.count("\n", 0, m.start()) + 1
        before = text[: m.start()].rstrip("\n").splitlines()
        marker = _NOT_RUN.match(before[-1]) if before else None
        code = _expand(textwrap.dedent(m.group(3)))
        out.append(Block(page, line, code, marker.group(1) if marker else None))
    return out


def _readme_blocks() -> set[str]:
    return {b.code for b in python_blocks(ROOT / "README.md")}


def _shortened(code: str) -> str:
    """``epochs=N`` at most 2, or with ``refine_at=(...)`` of m epochs: refinements at 1..m
    and m + 1 epochs."""
    refine = re.search(r"refine_at=\(([^)]*)\)", code)
    m = len([e for e in refine.group(1).split(",") if e.strip()]) if refine else 0
    if refine:
        code = code.replace(refine.group(0), f"refine_at={tuple(range(1, m + 1))}")
    cap = m + 1 if refine else 2
    return re.sub(r"\bepochs=(\d+)", lambda e: f"epochs={min(int(e.group(1)), cap)}", code)


PAGES = sorted(p for p in DOCS.glob("*.md") if python_blocks(p))


def test_every_python_block_runs_or_says_why() -> None:
    """The pages' Python is fenced ```` ```python ```` (another spelling would escape the run
    below), a block left out gives its reason, and the pages this file runs are the ones with
    Python blocks."""
    odd, silent = [], []
    for page in [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]:
        text = page.read_text()
        for m in _FENCE.finditer(text):
            if m.group(2).lower() in ("py", "python3", "pycon", "ipython", "py3", "pyi") or (
                m.group(2) != "python" and m.group(2).lower() == "python"
            ):
                odd.append(f"{page.relative_to(ROOT)}:{text.count(chr(10), 0, m.start()) + 1}")
        for b in python_blocks(page):
            if b.not_run is not None and not b.not_run.strip():
                silent.append(f"{page.relative_to(ROOT)}:{b.line}")
    assert not odd, f"fence Python code as ```python: {odd}"
    assert not silent, f"give the reason in <!-- not-run: reason --> at {silent}"
    assert {p.name for p in PAGES} >= {"howto_noise.md", "howto_compress.md"}


def test_howto_pages_show_their_whole_script() -> None:
    """Each how-to script is shown on its page section by section, in order, every section
    once, so that running the page's blocks is running the script (and the script's file,
    linked from the page, is the code the page shows)."""
    for script in sorted((DOCS / "howto").glob("*.py")):
        sections = re.findall(r"^# --8<-- \[start:([\w-]+)\]", script.read_text(), re.M)
        assert sections, script.name
        rel = script.relative_to(DOCS).as_posix()
        pages = [p for p in DOCS.glob("*.md") if rel in p.read_text()]
        assert len(pages) == 1, (script.name, pages)
        shown = re.findall(rf'^--8<-- "{re.escape(rel)}:([\w-]+)"', pages[0].read_text(), re.M)
        assert shown == sections, (pages[0].name, shown, sections)
        assert f"]({rel})" in pages[0].read_text(), f"{pages[0].name}: link the script {rel}"
        # Outside its sections the script holds only its docstring.
        rest = re.sub(r"^# --8<-- \[start:.*?^# --8<-- \[end:[\w-]+\]\n?", "",
                      script.read_text(), flags=re.M | re.S)  # fmt: skip
        rest = re.sub(r'^""".*?"""\n', "", rest, flags=re.S).strip()
        assert not rest, f"{script.name}: code outside a section, not on the page: {rest[:200]}"


def _commands(page: Path, package: str) -> list[list[str]]:
    text = page.read_text()
    out = []
    for m in _FENCE.finditer(text):
        if m.group(2) != "bash":
            continue
        joined = re.sub(r"\\\n\s*", " ", m.group(3))
        for line in joined.splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith(f"python -m {package} "):
                out.append(shlex.split(line)[3:])
    return out


def test_howto_command_lines_parse() -> None:
    """The command-line twins on the how-to pages are commands the parsers accept."""
    from basis_ode.__main__ import build_parser as basis_parser
    from noisy_dyn.__main__ import build_parser as noisy_parser

    parsed = 0
    for page in sorted(DOCS.glob("howto_*.md")):
        for package, build in (("noisy_dyn", noisy_parser), ("basis_ode", basis_parser)):
            for argv in _commands(page, package):
                build().parse_args(argv)  # SystemExit(2) on an unknown flag or a bad value
                parsed += 1
    assert parsed >= 4


@pytest.mark.slow  # the pages' examples, shortened: about 60 s on the shared 2-core CPU in all
@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_page_python_blocks_run(page: Path, tmp_path: Path) -> None:
    readme = _readme_blocks()
    parts = []
    for b in python_blocks(page):
        if b.not_run is not None or (page.name == "getting_started.md" and b.code in readme):
            continue
        parts.append(f"# ---- {page.relative_to(ROOT)}, the block at line {b.line}\n")
        parts.append(_shortened(b.code) + "\n")
    if not parts:
        pytest.skip(f"{page.name}: its blocks are README.md's, run by test_readme_examples_run")
    script = tmp_path / f"{page.stem}_blocks.py"
    script.write_text("".join(parts))
    env = dict(os.environ, MPLBACKEND="Agg", **{QUICK: "1"})
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        lines = script.read_text().splitlines()
        failing = [int(n) for n in re.findall(rf'File "{re.escape(str(script))}", line (\d+)',
                                              result.stderr)]  # fmt: skip
        where = ""
        if failing:
            heads = [ln for ln in lines[: failing[-1]] if ln.startswith("# ---- ")]
            where = heads[-1][7:] if heads else ""
        raise AssertionError(f"{where}:\n{result.stderr[-3000:]}")
