"""The documentation site builds in strict mode, and the README stays a front page.

``mkdocs build --strict`` fails on a broken link, a missing cross-reference, a docstring griffe
cannot parse (Google style), and, through ``docs/_site/hooks.py``, on any public name of any
public module without an entry in the API reference. The site is built into a temporary folder.
"""

import ast
import html as html_lib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = (
    "pip install . && python -m noisy_dyn demo && python -m basis_ode demo",
    'pip install -e ".[dev]" && python -m pytest -n 2',
)


@pytest.fixture(scope="module")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built once for this module by ``mkdocs build --strict`` (about 30 s)."""
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    env = dict(os.environ, DISABLE_MKDOCS_2_WARNING="true", NO_MKDOCS_2_WARNING="1")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    site = tmp_path_factory.mktemp("docs") / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-6000:]
    assert "WARNING" not in log, log[-6000:]
    return site


def _reference_ids(site: Path) -> dict[str, Path]:
    """Every element id on the API reference's pages, with the page it is on."""
    out: dict[str, Path] = {}
    for page in (site / "reference").rglob("index.html"):
        for i in re.findall(r'\bid="([^"]+)"', page.read_text()):
            out.setdefault(i, page)
    return out


@pytest.mark.slow  # about 30 s: the whole site, API pages and notebooks included
def test_strict_site_build_documents_every_public_name(built_site: Path) -> None:
    site = built_site

    # The hook's check has something to check: the walk finds the packages' public modules,
    # and each module's page carries the anchor of each of its names.
    sys.path.insert(0, str(ROOT / "docs" / "_site"))
    import apiwalk

    api = apiwalk.api_map()
    assert {"noisy_dyn", "basis_ode", "trainkit", "noisy_dyn.data", "basis_ode.data"} <= set(api)
    ids = _reference_ids(site)
    for module, names in api.items():
        missing = [n for n in names if f"{module}.{n}" not in ids]
        assert module in ids and not missing, (module, missing)
    assert "fit" in api["noisy_dyn"] and "compress" in api["basis_ode"]

    # The site works offline: no page loads a script or a style sheet from another host, and the
    # MathJax bundle it loads instead is in the site (the real MathJax 3, not an empty file).
    remote = re.compile(r"<(?:script|link)\b[^>]*\b(?:src|href)=\"(?:https?:)?//[^\"]+", re.I)
    pages = list(site.rglob("*.html"))
    assert len(pages) > 50
    offenders = [f"{p.relative_to(site)}: {m.group(0)[:120]}" for p in pages
                 for m in remote.finditer(p.read_text(errors="replace"))]  # fmt: skip
    assert not offenders, offenders[:5]
    bundle = site / "javascripts" / "vendor" / "mathjax" / "tex-svg.js"
    assert bundle.stat().st_size > 1_000_000 and b"MathJax" in bundle.read_bytes()
    assert "vendor/mathjax/tex-svg.js" in (site / "derivations" / "index.html").read_text()

    # One results page per stored folder (a checkpoint's own folders are listed on its page),
    # one benchmarks page per stored JSON.
    folders = [p for p in (ROOT / "docs" / "results").rglob("*") if p.is_dir()]
    for folder in folders:
        if any(re.fullmatch(r"ckpt_\d+", part) for part in folder.parts[:-1]):
            continue
        rel = folder.relative_to(ROOT / "docs")
        assert (site / rel / "index.html").exists(), rel
    for p in (ROOT / "benchmarks" / "results").glob("*.json"):
        assert (site / "benchmarks" / p.stem / "index.html").exists(), p.name
    # A Markdown run record without a JSON twin (the fault-injection counts) has its page too,
    # and the changelog is a page of the site.
    for p in (ROOT / "benchmarks" / "results").glob("*.md"):
        if not p.with_suffix(".json").exists():
            assert (site / "benchmarks" / p.stem / "index.html").exists(), p.name
    if (ROOT / "CHANGELOG.md").exists():
        assert (site / "changelog" / "index.html").exists()
    # The options that trainkit.takes_train_options adds to fit at import time are in its
    # reference entry (griffe alone reads the source, which has neither their parameters nor
    # their documentation): every option's name and the first words of its documentation.
    import trainkit
    from noisy_dyn import fit

    page = _reference_ids(site)["noisy_dyn.fit"].read_text()
    page = html_lib.unescape(re.sub(r"<[^>]+>", "", page))
    entry = page[page.index("fit(") :]
    for name in fit.train_option_names:
        doc = trainkit.TrainOptions.__dataclass_fields__[name].metadata["doc"]
        words = re.sub(r"``?", "", doc).split()[:4]
        assert name in entry and " ".join(words) in re.sub(r"\s+", " ", entry), name
    # A results page shows its stored table, its plot and its command.
    page = (site / "results" / "noisy_dyn" / "study_digits" / "index.html").read_text()
    text = re.sub(r"<[^>]+>", "", page)  # the command is highlighted span by span
    assert "study.png" in page and "<table" in page
    assert "--sigma-add 0,0.03 --sigma-mult 0,0.02" in text
    # The notebooks are rendered with their stored outputs (an embedded image).
    for nb in (ROOT / "notebooks").glob("*.ipynb"):
        html = (site / "notebooks" / nb.stem / "index.html").read_text()
        assert "data:image/png;base64" in html, nb.name


def test_docstring_sections_use_one_header_style() -> None:
    """Every docstring of the three packages writes its arguments under ``Arguments:`` (a
    Google-style header, the one most of the code used and the one diffrax and equinox write),
    never under ``Args:``, ``Parameters:`` or ``Params:``."""
    offenders = []
    for pkg in ("noisy_dyn", "basis_ode", "trainkit"):
        for path in sorted((ROOT / pkg).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(
                    node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Module
                ):
                    doc = ast.get_docstring(node, clean=False) or ""
                    if re.search(r"^\s*(Args|Parameters|Params):\s*$", doc, re.M):
                        offenders.append(f"{path.relative_to(ROOT)}:{getattr(node, 'name', '')}")
    assert not offenders, (
        f"write 'Arguments:' in {offenders}; all at once: "
        "sed -i -E 's/^(\\s*)Args:\\s*$/\\1Arguments:/' $(git ls-files 'noisy_dyn/*.py' "
        "'basis_ode/*.py' 'trainkit/*.py')"
    )


def test_readme_is_a_front_page_with_the_quickstart() -> None:
    text = (ROOT / "README.md").read_text()
    lines = text.splitlines()
    assert len(lines) <= 160, f"README.md has {len(lines)} lines; move details into docs/"
    for command in QUICKSTART:
        assert command in lines, f"README.md lost the Quickstart line: {command}"
    for word in ("session", "issue's", "this issue"):
        assert word not in text.lower(), f"README.md speaks of '{word}'"


def test_build_check_refuses_a_reference_page_without_a_name(tmp_path: Path) -> None:
    """The hook that makes the strict build fail does fail: a page lacking one anchor."""
    pytest.importorskip("mkdocs")
    sys.path.insert(0, str(ROOT / "docs" / "_site"))
    import apiwalk
    import hooks
    from mkdocs.exceptions import PluginError

    api = apiwalk.api_map()
    for module, names in api.items():
        page = tmp_path / "reference" / module / "index.html"
        page.parent.mkdir(parents=True)
        page.write_text("".join(f'<h2 id="{module}.{n}"></h2>' for n in names) + f'id="{module}"')
    hooks.on_post_build({"site_dir": str(tmp_path)})  # complete: passes
    dropped = api["noisy_dyn"][0]
    page = tmp_path / "reference" / "noisy_dyn" / "index.html"
    page.write_text(page.read_text().replace(f'id="noisy_dyn.{dropped}"', ""))
    with pytest.raises(PluginError, match=f"noisy_dyn.{dropped}"):
        hooks.on_post_build({"site_dir": str(tmp_path)})
    # ... and a name documented twice (on two topic pages) fails it too.
    page.write_text(page.read_text() + f'<h2 id="noisy_dyn.{dropped}"></h2>')
    hooks.on_post_build({"site_dir": str(tmp_path)})
    twice = tmp_path / "reference" / "noisy_dyn" / "model" / "index.html"
    twice.parent.mkdir(parents=True)
    twice.write_text(f'<h2 id="noisy_dyn.{dropped}"></h2>')
    with pytest.raises(PluginError, match=f"more than one entry.*noisy_dyn.{dropped}"):
        hooks.on_post_build({"site_dir": str(tmp_path)})


def test_dev_extra_carries_the_docs_build() -> None:
    """The README's test command installs ``.[dev]``: it must bring every docs requirement."""
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    missing = sorted(set(extras["docs"]) - set(extras["dev"]))
    assert not missing, f"add {missing} to the dev extra too (tests/test_docs.py builds the site)"


_NAME = re.compile(
    r"(?<![\w./-])(noisy_dyn|basis_ode|trainkit|nd|bo)\.([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)"
)
_ALIAS = {"nd": "noisy_dyn", "bo": "basis_ode"}


def _resolves(package: str, dotted: str) -> bool:
    import importlib

    obj = importlib.import_module(package)
    path = package
    for part in dotted.split("."):
        path += f".{part}"
        if hasattr(obj, part):
            obj = getattr(obj, part)
            continue
        try:
            obj = importlib.import_module(path)
        except ImportError:
            return False
    return True


def test_names_in_readme_and_docs_exist() -> None:
    """Every ``noisy_dyn.x``, ``basis_ode.x``, ``trainkit.x`` (and ``nd.x``, ``bo.x`` of the
    examples) that README.md and the pages under docs/ name is importable: a renamed or moved
    function leaves no stale name in the documentation. The changelog and the stored result
    folders, which speak of names as they were, are not checked."""
    files = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    stale = []
    for path in files:
        for n, line in enumerate(path.read_text().splitlines(), 1):
            for m in _NAME.finditer(line):
                package, dotted = _ALIAS.get(m.group(1), m.group(1)), m.group(2)
                if dotted.split(".")[-1] in ("py", "md", "json", "npz", "npy"):
                    continue
                if not _resolves(package, dotted):
                    stale.append(f"{path.relative_to(ROOT)}:{n}: {m.group(0)}")
    assert not stale, "names that do not exist (renamed or moved?): " + "; ".join(stale)


@pytest.mark.slow  # about 50 s on the shared 2-core CPU: two short trainings
def test_readme_examples_run(tmp_path: Path) -> None:
    """The README's ten-line examples run as written, shortened to a few epochs (the noisy_dyn
    one to 2, the basis_ode one to 4 with its refinements at epochs 1, 2, 3), each in a fresh
    interpreter; each prints its accuracies, which must be fractions."""
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert len(blocks) == 2, "README.md should hold the two ten-line examples"
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    for code in blocks:
        assert len(code.strip().splitlines()) <= 12, code
        short = re.sub(r"refine_at=\([^)]*\)", "refine_at=(1, 2, 3)", code)
        short = re.sub(r"epochs=\d+", "epochs=4" if "refine_at" in code else "epochs=2", short)
        assert short != code, "the example no longer trains with epochs=...; update this test"
        result = subprocess.run(
            [sys.executable, "-c", short],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        numbers = [float(x) for x in re.findall(r"(?<![\w.])0\.\d+|1\.0\b", result.stdout)]
        assert numbers and all(0.0 <= x <= 1.0 for x in numbers[-2:]), result.stdout[-2000:]
        if "refine_at" in code:  # it shows what it says: trained to K = 8, read at 8, 4 and 2
            assert "PiecewiseConstant(K=8)" in result.stdout, result.stdout[-2000:]
            ks = re.findall(r"^(\d+) (?:0\.\d+|1\.0)$", result.stdout, re.M)
            assert ks == ["8", "4", "2"], result.stdout[-2000:]


def test_getting_started_shows_the_readme_examples() -> None:
    """docs/getting_started.md repeats the README's ten-line examples, verbatim."""
    fence = re.compile(r"```python\n.*?```", re.S)
    readme = fence.findall((ROOT / "README.md").read_text())
    page = fence.findall((ROOT / "docs" / "getting_started.md").read_text())
    assert page[: len(readme)] == readme, "copy the README's examples into getting_started.md"


def test_lists_are_set_apart_from_paragraphs() -> None:
    """A Markdown list straight after a line of text is that paragraph's text to MkDocs (its
    Markdown, unlike GitHub's, needs a blank line first): every page keeps the blank line."""
    glued = []
    for path in sorted((ROOT / "docs").glob("*.md")):
        fence, prev = False, ""
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if line.lstrip().startswith("```"):
                fence = not fence
            elif (
                not fence
                and re.match(r"(- |\* |\d+\. )", line)
                and prev.strip()
                and not re.match(r"\s*(- |\* |\d+\. )", prev)
                and not prev.startswith(("  ", "|", "#"))
            ):
                glued.append(f"{path.relative_to(ROOT)}:{n}")
            prev = line
    assert not glued, f"put a blank line before the list at {glued}"


def test_docstring_rewrites_of_the_griffe_extension() -> None:
    """The extension's two text rewrites, on docstrings written here: a joint entry becomes one
    per name, and an entry naming no parameter moves after the argument section."""
    pytest.importorskip("griffe")
    sys.path.insert(0, str(ROOT / "docs" / "_site"))
    import griffe_runtime as g

    doc = "Sum.\n\nArguments:\n    lo, hi: the bounds\n        (inclusive).\n    x: a value.\n"
    assert g.split_joint_arguments(doc) == (
        "Sum.\n\nArguments:\n    lo: the bounds\n        (inclusive).\n"
        "    hi: the bounds\n        (inclusive).\n    x: a value.\n"
    )
    doc = "Fit.\n\nArguments:\n    a: one.\n    old: the former name\n        of a.\n\n"
    doc += "Returns:\n    b."
    assert g._former_names_apart(doc, {"a"}) == (
        "Fit.\n\nArguments:\n    a: one.\n\n``old=``: the former name of a.\n\nReturns:\n    b."
    )
    assert g._former_names_apart(doc, {"a", "old"}) == doc


def test_internal_helpers_stay_out_of_the_reference() -> None:
    """``trainkit.internal`` (the packages' door into trainkit) is not documented as user API,
    while what a user meets from it (the label-gap warning, the options decorator) is public."""
    sys.path.insert(0, str(ROOT / "docs" / "_site"))
    import apiwalk

    api = apiwalk.api_map()
    assert "trainkit.internal" not in api and "trainkit" in api
    assert {"LabelGapWarning", "ArgumentTypeError", "takes_train_options"} <= set(api["trainkit"])


def test_nested_lists_are_indented_four_spaces() -> None:
    """Python-Markdown (MkDocs) nests a list item only when it is indented by 4 spaces; at 2
    (GitHub's habit) it renders flat. No page under docs/ has a list item indented by anything
    but a multiple of 4 outside code blocks."""
    offenders = []
    for path in sorted((ROOT / "docs").glob("*.md")):
        fence = False
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if line.lstrip().startswith("```"):
                fence = not fence
                continue
            m = re.match(r"( +)([-*+]|\d+\.) ", line)
            if not fence and m and len(m.group(1)) % 4:
                offenders.append(f"{path.relative_to(ROOT)}:{n}")
    assert not offenders, f"indent nested list items by 4 spaces: {offenders}"


def test_long_pages_have_sections() -> None:
    """A page longer than 150 lines has H2 sections, so that it gets a table of contents."""
    flat = [
        p.name
        for p in sorted((ROOT / "docs").glob("*.md"))
        if len(p.read_text().splitlines()) > 150
        and len(re.findall(r"^## ", p.read_text(), re.M)) < 2
    ]
    assert not flat, f"split these pages with ## headings: {flat}"


def test_folders_the_readme_links_have_a_readme() -> None:
    """Every folder that README.md links to reads on GitHub: it has a README.md of its own."""
    text = (ROOT / "README.md").read_text()
    folders = {ROOT / m for m in re.findall(r"\]\(([^)#\s]+?)/?\)", text) if (ROOT / m).is_dir()}
    assert folders, "README.md links no folder; update this test"
    bare = sorted(str(f.relative_to(ROOT)) for f in folders if not (f / "README.md").exists())
    assert not bare, f"write a README.md in {bare}"
    for f in folders:
        first = (f / "README.md").read_text().splitlines()[0]
        assert first.startswith("# "), f"{f.relative_to(ROOT)}/README.md: start with a # title"


@pytest.mark.slow  # shares the site built by the strict-build test
def test_site_layout(built_site: Path) -> None:
    """What the layout pass of the site fixed, checked in the built HTML."""
    site = built_site
    # Nested lists render nested: a <ul> inside an <li> on a page written with them.
    html = (site / "getting_started" / "index.html").read_text()
    assert re.search(r"<li>(?:(?!</li>).)*<ul>", html, re.S), "nested list rendered flat"
    # The navigation file is not a page, nor in the search index.
    assert not (site / "SUMMARY").exists() and not (site / "SUMMARY.html").exists()
    assert '"location":"SUMMARY' not in (site / "search" / "search_index.json").read_text()
    # Code and signatures wrap; the style sheet is on every page.
    css = (site / "stylesheets" / "layout.css").read_text()
    assert "pre-wrap" in css and "position: sticky" in css
    assert "stylesheets/layout.css" in (site / "index.html").read_text()
    # Every results page and benchmark page is titled by what it shows, not by its path; the
    # stored JSON is collapsed (inside <details>), never a page of raw tables.
    for page in [
        *(site / "results").rglob("index.html"),
        *(site / "benchmarks").rglob("index.html"),
    ]:
        text = page.read_text()
        rel = page.parent.relative_to(site).as_posix()
        title = html_lib.unescape(re.search(r"<title>(.*?)</title>", text, re.S).group(1))
        title = title.split(" - noisy-basis-dyn")[0].strip()
        h1 = re.search(r"<h1[^>]*>(.*?)</h1>", text, re.S)
        h1 = html_lib.unescape(re.sub(r"<[^>]+>", "", h1.group(1))).strip() if h1 else ""
        for shown in (title, h1.rstrip("¶").strip()):
            assert shown and shown not in (rel, rel.split("/", 1)[-1], page.parent.name), rel
        for name in re.findall(r"<h2[^>]*>([^<]*\.json)", text):
            raise AssertionError(f"{rel}: {name} is a section of raw values, not collapsed")
        assert "runs/" not in title, (rel, title)
        if rel.startswith("benchmarks/"):  # two runs of one heading told apart by what differs
            assert f"({page.parent.name})" not in title, (rel, title)
    # The overview's table of stored runs leaves the commands to each run's page (a command
    # column wrapped long commands into a tower of short lines).
    overview = (site / "benchmarks" / "index.html").read_text()
    stored = overview.split('id="stored-runs"')[1]
    head = re.search(r"<thead>(.*?)</thead>", stored, re.S).group(1)
    assert "command" not in head and "machine" in head
    study = (site / "results" / "noisy_dyn" / "study_digits" / "index.html").read_text()
    assert re.search(r"<details[^>]*>\s*<summary>study\.json", study)
    assert "not recorded" not in study
    # The key column of a wide table is among its first: a confirmation's verdict, a sweep's
    # accuracy and latency (they were the 12th and 9th columns, off-screen).
    for rel, key, at_most in [
        ("noisy_dyn/study_digits_confirm", "confirmed", 0),
        ("basis_ode/compress_rule_digits/refined_s0/project", "latency (ms)", 4),
    ]:
        text = (site / "results" / rel / "index.html").read_text()
        heads = [
            [
                html_lib.unescape(re.sub(r"<[^>]+>", "", h)).strip()
                for h in re.findall(r"<th[^>]*>(.*?)</th>", head, re.S)
            ]  # fmt: skip
            for head in re.findall(r"<thead>(.*?)</thead>", text, re.S)
        ]
        placed = [h.index(key) for h in heads if key in h]
        assert placed and max(placed) <= at_most, (rel, key, placed)
    # The API reference is by topic: each package's topics are pages of their own, and a name
    # two modules export is documented once (the other page points there).
    for package, topics in {
        "noisy_dyn": ("model", "solving", "training", "theory", "attacks", "study"),
        "basis_ode": ("bases", "expansions", "integration", "models", "compression"),
    }.items():
        for topic in topics:
            assert (site / "reference" / package / topic / "index.html").exists(), topic
    ids = _reference_ids(site)
    assert ids["noisy_dyn.fit"].parent.name == "training"
    assert ids["noisy_dyn.apply"].parent.name == "solving"
    assert ids["basis_ode.compress"].parent.name == "compression"
    assert ids["basis_ode.PiecewiseConstant"].parent.name == "bases"
    experiments = (site / "reference" / "noisy_dyn" / "experiments" / "index.html").read_text()
    assert experiments.count('id="noisy_dyn.experiments.fit"') == 1
    assert 'href="../training/#noisy_dyn.fit"' in experiments


def test_importing_the_page_generator_writes_nothing() -> None:
    """gen_pages writes the generated pages only inside a build (mkdocs-gen-files runs it with
    runpy); imported to test a helper, it must not write them into docs/, where they would be
    committed by mistake (it once wrote 155 pages there)."""
    pytest.importorskip("mkdocs_gen_files")
    before = sorted(p.relative_to(ROOT) for p in (ROOT / "docs").rglob("*"))
    code = "import sys; sys.path.insert(0, 'docs/_site'); import gen_pages; gen_pages._title('a_b')"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
    assert sorted(p.relative_to(ROOT) for p in (ROOT / "docs").rglob("*")) == before
