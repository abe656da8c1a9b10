"""Generate the site's API reference, results, benchmarks, notebooks and navigation at build time.

Run by ``mkdocs-gen-files`` (see ``mkdocs.yml``); nothing here is written into the repository.

* API reference: by topic (``TOPICS``): a page per topic of each package's top level (model,
  solving, training, ...) and per public submodule, each name documented once
  (``apiwalk.canonical``), with an overview page per package that lists every name.
* Results: one page per folder under ``docs/results/``, made from the stored files: the
  folder's Markdown tables, JSON files without a Markdown twin rendered as tables, its plots,
  the exact commands (``commands.sh``), the machine and the date (from the stored JSON where it
  says so, else from ``commands.sh``'s comments and the commit that added the folder).
* Benchmarks: one page per ``benchmarks/results/*.json`` with its tables, plots, machine, date
  and command, and an overview page.
* Notebooks: ``notebooks/*.ipynb`` with their stored outputs (rendered by mkdocs-jupyter,
  never executed).
* ``CHANGELOG.md`` at the root, when present, as a page.
* ``SUMMARY.md``: the navigation (mkdocs-literate-nav). Pages named in ``NAV`` are placed
  where it says when they exist; every other ``docs/*.md`` is listed under "More".
"""

from __future__ import annotations

import datetime as _dt
import json
import re
import subprocess
import sys
from pathlib import Path

import mkdocs_gen_files

sys.path.insert(0, str(Path(__file__).resolve().parent))
import apiwalk  # noqa: E402

ROOT = apiwalk.ROOT
DOCS = ROOT / "docs"
RESULTS = DOCS / "results"
BENCH = ROOT / "benchmarks" / "results"

# (section, [(title, page)]) in reading order; a page that does not exist is left out.
NAV: list[tuple[str, list[tuple[str, str]]]] = [
    (
        "Getting started",
        [
            ("Install and quickstart", "getting_started.md"),
            ("Your own data", "own_data.md"),
            ("Data sets", "data.md"),
            ("File formats", "data_formats.md"),
            ("Command lines", "command_lines.md"),
            ("Training", "training.md"),
            ("Training options", "training_options.md"),
            ("Devices and several hosts", "devices.md"),
            ("Checkpoints, resume and faults", "reliability.md"),
        ],
    ),
    (
        "How-to",
        [
            ("Does noise help on my data?", "howto_noise.md"),
            ("Compress an ODE-Net to a budget", "howto_compress.md"),
        ],
    ),
    (
        "Guides",
        [
            ("Noisy RNNs (noisy_dyn)", "guide_noisy_dyn.md"),
            ("Basis-function ODE-Nets (basis_ode)", "guide_basis_ode.md"),
        ],
    ),
    (
        "Theory",
        [
            ("Noisy RNN: derivations", "derivations.md"),
            ("Noisy RNN: the discretisations and the kernel", "noisy_rnn.md"),
            ("Basis-function ODE-Nets: the mathematics", "basis_ode.md"),
        ],
    ),
]
HOME = "index.md"


# ---------------------------------------------------------------------------------------------
# small helpers


def _write(path: str, text: str) -> None:
    with mkdocs_gen_files.open(path, "w") as f:
        f.write(text)


def _copy_binary(src: Path, dst: str) -> None:
    with mkdocs_gen_files.open(dst, "wb") as f:
        f.write(src.read_bytes())


def _git_first_date(path: Path) -> str | None:
    """The date (UTC, YYYY-MM-DD) of the first commit that added files under ``path``."""
    try:
        out = subprocess.run(
            ["git", "log", "--diff-filter=A", "--format=%cd", "--date=short", "--", str(path)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return None
    return out[-1] if out else None


def _first_heading(path: Path) -> str:
    """A page's first ``# `` heading without Markdown, else its file name."""
    for line in path.read_text().splitlines():
        if line.startswith("# "):
            return line[2:].replace("`", "").strip()
    return _title(path.stem).capitalize()


def _title(name: str) -> str:
    return name.replace("_", " ")


def _fmt(v: object) -> str:
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")):
            return str(v)
        if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e6):
            return f"{v:.3g}"
        return f"{v:.4g}"
    if isinstance(v, list):
        items = [_fmt(x) for x in v]
        if len(items) > 12:
            return ", ".join(items[:8]) + f", ... ({len(items)} values)"
        return "[" + ", ".join(items) + "]"
    s = str(v).replace("|", "\\|").replace("\n", " ")
    return s


def _is_scalar(v: object) -> bool:
    return v is None or isinstance(v, str | int | float | bool)


def _is_scalar_list(v: object) -> bool:
    return isinstance(v, list) and all(_is_scalar(x) for x in v)


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _flat(d: dict, prefix: str = "") -> dict[str, object] | None:
    """Flatten nested dicts of scalars (and short scalar lists) to dotted keys, else None."""
    out: dict[str, object] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if _is_scalar(v) or _is_scalar_list(v):
            out[key] = v
        elif isinstance(v, dict):
            sub = _flat(v, key + ".")
            if sub is None:
                return None
            out.update(sub)
        else:
            return None
    return out


def _columns(flats: list[dict[str, object]]) -> list[str]:
    """The union of the rows' keys in first-seen order, verdict columns (every value a bool, as
    ``confirmed`` or ``pareto``) first: a wide table's key column is then never off-screen."""
    cols: list[str] = []
    for f in flats:
        cols += [c for c in f if c not in cols]
    verdict = [c for c in cols if all(isinstance(f.get(c), bool) for f in flats)]
    return verdict + [c for c in cols if c not in verdict]


def json_tables(obj: object, level: int = 3, name: str = "") -> str:
    """Render any JSON value as Markdown tables: generic, so a new result file needs no code.

    A dict's scalar entries form one key/value table; a list of dicts, or a dict of dicts, of
    scalars is one table with a row per entry (verdict columns first, :func:`_columns`);
    anything deeper gets a heading and recurses.
    """
    h = "#" * min(level, 6)
    if _is_scalar(obj) or _is_scalar_list(obj):
        return f"{_fmt(obj)}\n\n"
    if isinstance(obj, list):
        flats = [_flat(x) if isinstance(x, dict) else None for x in obj]
        if obj and all(f is not None for f in flats):
            cols = _columns(flats)
            rows = [[_fmt(f.get(c, "")) for c in cols] for f in flats]
            return _table(cols, rows) + "\n"
        return "".join(json_tables(x, level + 1, f"{name}[{i}]") for i, x in enumerate(obj))
    assert isinstance(obj, dict)
    out = ""
    scalars = {k: v for k, v in obj.items() if _is_scalar(v) or _is_scalar_list(v)}
    if scalars:
        rows = [
            [str(k), _date_text({k: v}) if k in _DATE_KEYS else _fmt(v)] for k, v in scalars.items()
        ]
        out += _table(["key", "value"], rows) + "\n"
    rest = {k: v for k, v in obj.items() if k not in scalars}
    for k, v in rest.items():
        out += f"{h} {k}\n\n"
        if isinstance(v, dict) and v and all(isinstance(x, dict) for x in v.values()):
            flats = {kk: _flat(x) for kk, x in v.items()}
            if all(f is not None for f in flats.values()):
                cols = _columns(list(flats.values()))
                rows = [[str(kk)] + [_fmt(f.get(c, "")) for c in cols] for kk, f in flats.items()]
                out += _table([k] + cols, rows) + "\n"
                continue
        out += json_tables(v, level + 1, k)
    return out


_DATE_KEYS = ("date", "timestamp", "started")


def _find_keys(obj: object, keys: tuple[str, ...], found: dict[str, object]) -> None:
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k in keys and k not in found:
                found[k] = v
            _find_keys(v, keys, found)
    elif isinstance(obj, list):
        for x in obj[:50]:
            _find_keys(x, keys, found)


def _machine_text(m: object) -> str:
    if isinstance(m, dict):
        parts = []
        if m.get("backend") and m.get("backend") != "cpu":  # the accelerator first
            parts.append(f"{m.get('device') or m['backend']} (JAX backend {m['backend']})")
        if "processor" in m or "cpu_count" in m:
            parts.append(f"{m.get('cpu_count', '?')}-core {m.get('processor', '')} CPU".strip())
        for k in ("local_devices", "jax", "python", "torch"):
            if k in m:
                parts.append(f"{k} {m[k]}")
        if "load_average_1min" in m:
            parts.append(f"1-min load {float(m['load_average_1min']):.2f} at start")
        return ", ".join(parts) or _fmt(m)
    return _fmt(m)


def _date_text(found: dict[str, object]) -> str | None:
    for k in ("date", "timestamp", "started"):
        v = found.get(k)
        if isinstance(v, int | float) and v > 1e9:
            return _dt.datetime.fromtimestamp(v, _dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        if isinstance(v, str) and v:
            try:  # an ISO time stamp, shown as the others are
                t = _dt.datetime.fromisoformat(v)
            except ValueError:
                return v
            if "T" not in v or t.tzinfo is None:
                return v
            return t.astimezone(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return None


_MACHINE_RE = re.compile(
    r"((?:idle |shared |loaded |busy )?(?:the )?\d+-core CPU|(?:one )?NVIDIA \w+|one H200|H200)",
    re.IGNORECASE,
)


def _provenance(folder: Path, jsons: list[Path], comments: str) -> list[str]:
    """Lines saying on what machine and when, each with where the statement comes from."""
    found: dict[str, object] = {}
    for p in jsons:
        try:
            _find_keys(json.loads(p.read_text()), ("machine", "date", "started", "backend"), found)
        except (ValueError, OSError):
            continue
    lines = []
    if "machine" in found:
        lines.append(f"**Machine:** {_machine_text(found['machine'])} (stored in the JSON).")
    else:
        m = _MACHINE_RE.search(comments)
        readme = (folder / "README.md").read_text() if (folder / "README.md").exists() else ""
        m_readme = _MACHINE_RE.search(readme)
        if m:
            lines.append(f"**Machine:** {m.group(1)} (from the comments of `commands.sh`).")
        elif m_readme:
            lines.append(f"**Machine:** {m_readme.group(1)} (from the folder's README).")
        elif "backend" in found:
            lines.append(f"**Machine:** JAX backend `{found['backend']}` (stored in the JSON).")
        else:
            lines.append("**Machine:** not stored in this run's files.")
    date = _date_text(found)
    if date:
        lines.append(f"**Date:** {date} (stored in the JSON).")
    added = _git_first_date(folder)
    if added:
        lines.append(f"**Committed:** {added} (the commit that added these files).")
    return lines


# ---------------------------------------------------------------------------------------------
# API reference

# The reference is read by topic, not module by module: each package's page lists its topics,
# and each topic is a page of its own. A topic of a package's top level gathers the names
# whose defining (private) module is listed; a public submodule is a topic by itself. A name
# no topic claims lands on "Other names" and a submodule not listed gets its own page at the
# end, so a name or module added later is still documented (the strict build checks it).
# (slug, title, what it holds, defining modules; None for a submodule's page)
Topic = tuple[str, str, str, list[str] | None]
TOPICS: dict[str, list[Topic]] = {
    "noisy_dyn": [
        (
            "model",
            "Model",
            "The configuration pytree and its presets, the cells and noise forms, the parameters,"
            " the baseline cells and the Flax NNX and Equinox modules.",
            [
                "noisy_dyn._config",
                "noisy_dyn._cell",
                "noisy_dyn._noise",
                "noisy_dyn._params",
                "noisy_dyn.nn",
                "noisy_dyn._baselines",
            ],
        ),
        (
            "solving",
            "Solving",
            "The forward pass: logits, the trajectory, the final state and one step.",
            ["noisy_dyn._solve", "noisy_dyn._step", "noisy_dyn._fused", "trainkit._sequences"],
        ),
        (
            "training",
            "Training",
            "Training one model or an ensemble, the losses (noise injection or the explicit"
            " regularizer), the recipe, accuracy, and the errors training raises.",
            [
                "noisy_dyn._train",
                "noisy_dyn._ensemble",
                "noisy_dyn._training_loss",
                "noisy_dyn._regularizer",
                "trainkit._recipes",
                "trainkit._errors",
                "trainkit._devices",
            ],
        ),
        ("noisy_dyn.theory", "Theory", "", None),
        ("noisy_dyn.attacks", "Attacks", "", None),
        ("noisy_dyn.study", "Study", "", None),
        ("noisy_dyn.data", "Data", "", None),
        ("files", "Files", "Saving a trained model and loading it back.", ["noisy_dyn._model_io"]),
        ("noisy_dyn.random", "Random numbers", "", None),
        ("noisy_dyn.nn", "Flax and Equinox", "", None),
        ("noisy_dyn.experiments", "Pipelines (experiments)", "", None),
    ],
    "basis_ode": [
        (
            "bases",
            "Bases",
            "The basis families in depth that the weights are expanded in.",
            ["basis_ode._bases"],
        ),
        (
            "expansions",
            "Expansions",
            "Weights as basis expansions: evaluating them, the change of basis (projection,"
            " interpolation, refinement) and reading the basis of trained variables.",
            ["basis_ode._expansion", "basis_ode._projection"],
        ),
        (
            "integration",
            "Integration",
            "Integrating in depth: the Runge-Kutta schemes, `odeint` and the stateful solve.",
            ["basis_ode._integrate", "basis_ode._stateful"],
        ),
        (
            "models",
            "Models",
            "The ODE-Nets, their discrete twin, the ODE block and its units, and the export to a"
            " plain ResNet.",
            ["basis_ode._models", "basis_ode._block", "basis_ode._units", "basis_ode._export"],
        ),
        (
            "compression",
            "Compression",
            "Compressing trained variables to fewer basis functions without retraining.",
            ["basis_ode._compress"],
        ),
        (
            "planning",
            "Planning for a budget",
            "Budgets, the measured frontier, the certificate under step refinement and the plan.",
            [
                "basis_ode._budget",
                "basis_ode._frontier",
                "basis_ode._certificate",
                "basis_ode._plan",
            ],
        ),
        (
            "training",
            "Training",
            "Training one model or an ensemble, the recipes, accuracy, and the errors training"
            " raises.",
            ["basis_ode._train", "basis_ode._ensemble", "trainkit._recipes", "trainkit._errors"],
        ),
        ("basis_ode.data", "Data", "", None),
        ("files", "Files", "Saving a trained model and loading it back.", ["basis_ode._model_io"]),
        ("basis_ode.experiments", "Pipelines (experiments)", "", None),
        ("basis_ode.tagging_study", "Tagging study", "", None),
    ],
    "trainkit": [
        (
            "training",
            "Training loop",
            "The loop both packages train with, its options, recipes, divergence policies and"
            " interruption.",
            [
                "trainkit._loop",
                "trainkit._options",
                "trainkit._trained",
                "trainkit._recipes",
                "trainkit._divergence",
                "trainkit._returned",
                "trainkit._signals",
                "trainkit._history",
                "trainkit._progress",
            ],
        ),
        (
            "data",
            "Data",
            "Sequences and splits, batching, the file readers and the checks on labels.",
            [
                "trainkit._sequences",
                "trainkit._splits",
                "trainkit._batching",
                "trainkit._formats",
                "trainkit._ts",
                "trainkit._data_checks",
                "trainkit._validate",
            ],
        ),
        (
            "files",
            "Checkpoints and run folders",
            "Checkpoints, atomic writes, run-folder locks and model files.",
            [
                "trainkit._checkpoint",
                "trainkit._atomic",
                "trainkit._lock",
                "trainkit._model_files",
                "trainkit._integrity",
                "trainkit._run_record",
            ],
        ),
        (
            "statistics",
            "Statistics and tables",
            "Bootstrap intervals, paired differences, Holm's correction and Markdown tables.",
            ["trainkit._stats", "trainkit._tables"],
        ),
        (
            "devices",
            "Devices",
            "CPU devices, the device mesh and several hosts.",
            ["trainkit._devices", "trainkit._cluster", "trainkit._coordinator"],
        ),
        (
            "cli",
            "Command lines",
            "The parser and flags the command lines share.",
            ["trainkit._cli"],
        ),
        ("errors", "Errors", "The errors the packages raise.", ["trainkit._errors"]),
    ],
}
OTHER: Topic = ("other", "Other names", "Public names no topic above claims.", [])


def _summary(obj: object) -> str:
    """The first sentence of a function's or class's docstring, for the contents tables."""
    import inspect

    if not (inspect.isfunction(obj) or inspect.isclass(obj) or callable(obj)):
        return ""
    doc = inspect.getdoc(obj) or ""
    if doc.startswith(f"{getattr(obj, '__name__', '')}("):  # a dataclass's generated text
        return ""
    first = " ".join(doc.split("\n\n")[0].split())
    m = re.match(r"(.+?\.)(\s|$)", first)
    text = m.group(1) if m else first
    if len(text) > 160:
        text = text[:157].rsplit(" ", 1)[0] + " ..."
    if text.count("`") % 2:  # a cut through inline code
        text = text.replace("`", "")
    return text.replace("|", "\\|")


def _entry(path: str, level: int) -> str:
    return (
        f"::: {path}\n"
        "    options:\n"
        "      show_root_heading: true\n"
        "      show_root_full_path: false\n"
        f"      heading_level: {level}\n"
    )


def _pointer_rows(entries: list[tuple[str, str]], where: dict) -> list[str]:
    """Table rows for names documented on another page: the anchor of the name here, the name
    it is documented as (an autorefs link) and its first sentence."""
    import importlib

    rows = []
    for module, name in entries:
        home_module, home_name = where[(module, name)]
        obj = getattr(importlib.import_module(module), name, None)
        target = f"{home_module}.{home_name}"
        rows.append(
            f"| [](){{#{module}.{name}}}`{name}` | [`{target}`][{target}] | {_summary(obj)} |"
        )
    return rows


def gen_api() -> list[str]:
    """Write the reference by topic; return the SUMMARY lines of the API section."""
    import importlib

    api = apiwalk.api_map()
    where = apiwalk.canonical()
    nav = ["- API reference", "    - [Overview](reference/index.md)"]
    overview = [
        "# API reference",
        "",
        "Generated from the docstrings (Google style) of every public module: a module whose",
        "dotted name has no part starting with `_`. Each package's names are grouped by topic,",
        "one page per topic; a name two modules export (`noisy_dyn.Sequences` is",
        "`trainkit.Sequences`) is documented once, where it is defined, and the other module's",
        "page links there. The strict build fails if a public name has no entry, or two, so",
        "new modules and names are documented as they land.",
        "",
    ]
    for package in apiwalk.PACKAGES:
        modules = [m for m in api if m == package or m.startswith(package + ".")]
        if not modules:
            continue
        topics = list(TOPICS.get(package, []))
        listed = {slug for slug, *_ in topics if "." in slug}
        topics += [(m, m.split(".", 1)[1], "", None) for m in modules[1:] if m not in listed]
        topics = [t for t in topics if t[3] is not None or t[0] in modules]
        # Which topic of the top level each of its own (documented-here) names belongs to.
        claim: dict[str, str] = {}
        for slug, _, _, origins in topics:
            for o in origins or []:
                claim.setdefault(o, slug)
        pages: dict[str, list[tuple[str, str]]] = {slug: [] for slug, *_ in topics}
        pages["other"] = []
        outside: dict[str, list[tuple[str, str]]] = {}
        for module in modules:
            for name in api[module]:
                ext = apiwalk.external(module, name)
                if ext:
                    outside.setdefault(module, []).append((name, ext))
                    continue
                if module == package:
                    slug = claim.get(apiwalk.origin(module, name) or "", "other")
                else:
                    slug = module
                pages[slug].append((module, name))
        if pages["other"]:
            topics.append(OTHER)

        def order(entry: tuple[str, str]) -> tuple[bool, int]:
            module, name = entry
            obj = getattr(importlib.import_module(module), name, None)
            return (not callable(obj), api[module].index(name))

        base = f"reference/{package}"
        nav.append(f"    - {package}")
        nav.append(f"        - [Overview]({base}/index.md)")
        index = [
            f"::: {package}",
            "    options:",
            "      show_root_heading: true",
            "      heading_level: 1",
            "      members: false",
            "",
        ]
        overview += [f"## The {package} package", "", "| topic | names | what it holds |"]
        overview.append("|---|---|---|")
        for slug, title, blurb, _ in topics:
            entries = sorted(pages[slug], key=order)
            if not entries and slug not in modules:
                continue
            file = slug.split(".", 1)[1] if "." in slug else slug
            here = [e for e in entries if where[e] == e]
            there = [e for e in entries if where[e] != e]
            if "." in slug:  # a submodule's page: its docstring, then its names
                text = [
                    f"::: {slug}",
                    "    options:",
                    "      show_root_heading: true",
                    "      heading_level: 1",
                    "      members: false",
                    "",
                ]
                mod = importlib.import_module(slug)
                first = (mod.__doc__ or "").strip().split("\n")[0]
                blurb = re.sub(r"^[\w.]+:\s*", "", first)
            else:
                text = [f"# {title}", "", blurb, ""]
                text += [f"These are names of the top level, `import {package}`.", ""]
            text += [_entry(f"{m}.{n}", 2) for m, n in here]
            if there:
                text += [
                    "## Documented elsewhere",
                    "",
                    "The same objects as names documented on another page:",
                    "",
                    "| name | is | what it does |",
                    "|---|---|---|",
                    *_pointer_rows(there, where),
                    "",
                ]
            others = outside.get(slug, [])
            if others:
                text += ["## Re-exported from other libraries", ""]
                text += [f"- [](){{#{slug}.{n}}}`{slug}.{n}`: `{o}`" for n, o in others]
                text.append("")
            _write(f"{base}/{file}.md", "\n".join(text))
            nav.append(f"        - [{title}]({base}/{file}.md)")
            overview.append(
                f"| [{title}]({package}/{file}.md) | {len(entries)} | {blurb.replace('|', '/')} |"
            )
            index += [f"## [{title}]({file}.md)", "", blurb, "", "| name | what it does |"]
            index.append("|---|---|")
            for m, n in entries:
                target = "{}.{}".format(*where[(m, n)])
                obj = getattr(importlib.import_module(m), n, None)
                index.append(f"| [`{n}`][{target}] | {_summary(obj)} |")
            index.append("")
        if outside.get(package):
            index += ["## Re-exported from other libraries", ""]
            index += [
                f"- [](){{#{package}.{n}}}`{package}.{n}`: `{o}`" for n, o in outside[package]
            ]
            index.append("")
        _write(f"{base}/index.md", "\n".join(index))
        overview.append("")
    _write("reference/index.md", "\n".join(overview) + "\n")
    return nav


# ---------------------------------------------------------------------------------------------
# results


def _commands(folder: Path) -> tuple[str, str]:
    sh = folder / "commands.sh"
    if not sh.exists():
        return "", ""
    text = sh.read_text()
    comments = " ".join(
        line.lstrip("# ").strip()
        for line in text.splitlines()
        if line.startswith("#") and not line.startswith("#!")
    )
    return text, comments


def _readme(folder: Path) -> tuple[str, str] | None:
    """A folder's own ``README.md``: (its first heading, the rest), or None."""
    p = folder / "README.md"
    if not p.exists():
        return None
    lines = p.read_text().strip().splitlines()
    if lines and lines[0].startswith("# "):
        return lines[0][2:].strip(), "\n".join(lines[1:]).strip()
    return "", "\n".join(lines)


def _inline_md(path: Path) -> str:
    """A stored Markdown file, its headings moved below the page's own (level 3 and lower)."""
    return _inline_md_text(path.read_text())


_BLOCK = re.compile(r"\s*([|>]|#{1,6} |[*+-] |\d+\. |```)")


def _inline_md_text(text: str) -> str:
    """Markdown written by a command or by hand, its headings two levels lower.

    A command writes each line of text as a paragraph of its own, often longer than any line
    a person wraps (Markdown would join consecutive lines into one), and often right before a
    table: a blank line goes after a plain, unindented line longer than 100 characters or
    followed by a table, list, heading or fence. Lines wrapped by hand (at most 100
    characters) and the indented lines of a list item are left as they are.
    """
    lines = text.splitlines()
    out = []
    fence = False
    for i, line in enumerate(lines):
        if line.startswith("```"):
            fence = not fence
        if not fence and re.match(r"#{1,4} ", line):
            line = "##" + line
        out.append(line)
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        plain = line.strip() and not line[0].isspace() and not _BLOCK.match(line)
        if not fence and plain and (len(line) > 100 or (nxt.strip() and _BLOCK.match(nxt))):
            out.append("")
    return "\n".join(out).strip() + "\n"


def _result_jsons(folder: Path) -> list[Path]:
    """The JSON files a folder's machine and date are read from: its own, and its subfolders'
    unless it is a package's folder (whose subfolders are separate runs)."""
    if folder.parent == RESULTS:
        return sorted(folder.glob("*.json"))
    return sorted(folder.rglob("*.json"))


_DATA = {
    "digits": "sklearn digits",
    "mnist": "pixel MNIST (784 steps)",
    "pmnist": "permuted pixel MNIST (784 steps)",
    "fashion_mnist": "Fashion-MNIST (784 pixel steps)",
    "fmnist": "Fashion-MNIST",
    "fsdd": "FSDD spoken digits",
}
_PARTS = [
    (r"s(\d+)", r"seed \1"),
    (r"K(\d+)", r"K = \1"),
    (r"test(\d+)", r"\1 test images"),
    (r"ckpt_0*(\d+)", r"checkpoint at step \1"),
    (r"attempt(\d+)", r"attempt \1"),
    (r"ito", "Ito form"),
    (r"reference", "reference form"),
    (r"direct", "trained directly"),
    (r"refined", "trained by refinement"),
    (r"project", "L2 projection"),
    (r"interpolate", "nodal interpolation"),
    (r"nrnn", "Noisy RNN arm"),
    (r"deterministic", "deterministic arm"),
    (r"per_seed", "per-seed results"),
    (r"snapshot", "snapshot of the newest checkpoints"),
    (r"idle", "idle machine"),
    (r"fmnist", "Fashion-MNIST"),
    (r"cpu", "CPU"),
    (r"gpu", "GPU"),
    (r"(\d+)seeds", r"\1 seeds"),
]

_NAMES = {
    "fast": "The model chosen for the latency budget (fast)",
    "small": "The model chosen for the size budget (small)",
    "both": "The model chosen for both budgets (both)",
}
"""Whole folder names in words (a plan's budgets), before the parts of ``_PARTS``."""


def _describe(name: str) -> str:
    """A folder name in words: ``direct_s0_K1`` -> "trained directly, seed 0, K = 1"."""
    if name == "per_seed":
        return "Per-seed results"
    if name in _NAMES:
        return _NAMES[name]
    step = re.fullmatch(r"ckpt_0*(\d+)", name)
    if step:
        return f"Checkpoint at step {step.group(1)}"
    words = []
    for part in name.split("_"):
        for pattern, repl in _PARTS:
            if re.fullmatch(pattern, part):
                part = re.sub(pattern, repl, part)
                break
        words.append(part)
    text = ", ".join(words)
    return text[:1].upper() + text[1:]


def _sentence(text: str, limit: int = 110) -> str:
    """The first sentence (or clause before a colon) of ``text``, at most ``limit`` characters."""
    text = " ".join(text.split())
    m = re.match(r"(.+?)(?:\.\s|:\s|\.$|$)", text)
    first = m.group(1) if m else text
    if len(first) > limit:  # cut at a word, without a dangling comma, and say so
        return first[:limit].rsplit(" ", 1)[0].rstrip(",;: ") + " ..."
    return first.rstrip(".")


def _md_lead(folder: Path) -> str:
    """The first line of the first stored Markdown table's file when it is a sentence."""
    for p in sorted(folder.glob("*.md")):
        if p.name == "README.md":
            continue
        first = p.read_text().strip().splitlines()[:1]
        if first and not first[0].startswith(("|", "#", "Mean +- std")):
            return _sentence(first[0].replace("`", ""))
    return ""


def _result_title(folder: Path) -> str:
    """What a results folder shows, in words: its README's first heading; else a noise study's
    setup (``study_setup.json``), a robustness summary's models (``summary.json``), the first
    sentence of ``commands.sh``'s comments or of a stored table's caption; else the folder's
    name in words under the title of the folder above."""
    readme = _readme(folder)
    if readme and readme[0]:
        return readme[0].replace("`", "")
    if folder.parent == RESULTS:
        return f"Stored runs of {folder.name}"
    setup = folder / "study_setup.json"
    if setup.exists():
        try:
            s = json.loads(setup.read_text())
            data = _DATA.get(str(s.get("data")), str(s.get("data")))
            title = (
                f"Noise study on {data}: {s.get('preset')}, {len(s.get('seeds', []))} seeds,"
                f" {s.get('epochs')} epochs"
            )
            if (folder / "confirm.json").exists():
                title += ", with the confirmation on fresh seeds"
            return title
        except (ValueError, TypeError):
            pass
    if folder.parent.parent != RESULTS:  # a part of a run: the run's title, then the part
        return f"{_result_title(folder.parent)}: {_describe(folder.name).lower()}"
    summary = folder / "summary.json"
    if summary.exists():
        try:
            s = json.loads(summary.read_text())
            models = ", ".join(s["clean"])
            prefix = folder.name.split("_")[0]
            data = _DATA.get(prefix, "sklearn digits" if prefix == "demo" else prefix)
            n = s["seeds"]
            return f"Robustness of {models} on {data} ({n} training seed{'s' * (n != 1)})"
        except (ValueError, TypeError, KeyError):
            pass
    _, comments = _commands(folder)
    if comments and not comments.startswith("What produced"):
        return _sentence(comments.replace("`", ""))
    return _md_lead(folder) or _describe(folder.name)


def _nav_title(folder: Path) -> str:
    """The navigation's name of a results page: the title for a run, the name in words for a
    part of one (it sits under the run's entry)."""
    if folder.parent.parent == RESULTS or _readme(folder):
        return _result_title(folder).replace("[", "(").replace("]", ")")
    words = _describe(folder.name)
    if words != folder.name:
        return words
    for p in sorted(folder.glob("*.md")):  # a name (ACSF1): its table's caption says what
        first = p.read_text().strip().splitlines()[:1]
        if first and not first[0].startswith(("|", "#")):
            return first[0].split(". ")[0].rstrip(".").replace("[", "(").replace("]", ")")
    return f"Results for {folder.name}"


def _is_checkpoint(folder: Path) -> bool:
    return re.fullmatch(r"ckpt_\d+", folder.name) is not None


def _collapsed(title: str, body: str) -> str:
    """``body`` in a collapsed block (``<details>``): its headings become bold lines, so the
    stored values stay out of the page's table of contents."""
    body = re.sub(r"^#{1,6} (.*)$", r"**\1**", body.strip(), flags=re.M)
    indented = "\n".join(("    " + line) if line.strip() else "" for line in body.splitlines())
    return f'??? note "{title}"\n\n{indented}\n'


def _result_page(folder: Path, children: list[Path]) -> str:
    """The page of one results folder, headline first (as the WSJ tagging page): the title of
    what it shows, what was run and found (its README, a ``headline.md`` or the comments of its
    ``commands.sh``), the plots and tables, then the machine and the date, the exact commands,
    and the stored JSON collapsed."""
    rel = folder.relative_to(RESULTS)
    files = sorted(p for p in folder.iterdir() if p.is_file())
    text, comments = _commands(folder)
    readme = _readme(folder)
    headline = folder / "headline.md"
    mds = [p for p in files if p.suffix == ".md" and p.name not in ("README.md", "headline.md")]
    jsons = [p for p in files if p.suffix == ".json"]
    pngs = [p for p in files if p.suffix == ".png"]
    lines = [f"# {_result_title(folder)}", ""]
    if readme:
        lines += [readme[1], ""]
    if headline.exists():
        lines += ["## Headline", "", _inline_md(headline), ""]
    if comments and not readme:
        lines += ["## What was run", "", comments, ""]
    for p in pngs:
        lines += [f"## {p.name}", "", f"![{p.stem}]({p.name})", ""]
    for p in mds:
        lines += [f"## {p.name}", "", _inline_md(p), ""]
    lines += ["## Machine and date", ""]
    lines += [line + "  " for line in _provenance(folder, _result_jsons(folder), comments)]
    lines += [f"Generated from the files stored in `docs/results/{rel.as_posix()}/`.", ""]
    md_stems = {p.stem for p in mds}
    for p in jsons:
        try:
            data = json.loads(p.read_text())
        except ValueError:
            continue
        what = "the same values as " + f"{p.stem}.md" if p.stem in md_stems else "stored values"
        lines += [_collapsed(f"{p.name} ({what})", json_tables(data, 3, p.stem)), ""]
    if text:
        lines += ["## Command", "", "```bash", text.rstrip(), "```", ""]
    up = "../" * (len(rel.parts) + 1)
    referrers = _referrers(rel.as_posix())
    if not text and folder.parent.parent == RESULTS:
        lines += [
            "## Command",
            "",
            "No `commands.sh` is stored with these files"
            + ("; the pages below give the command and discuss the run." if referrers else "."),
            "",
        ]
    if referrers:
        lines += ["## Discussed in", ""]
        lines += [
            f"- [{'Home' if p == HOME else _first_heading(DOCS / p)}]({up}{p})" for p in referrers
        ]
        lines.append("")
    if children:
        lines += ["## Parts", ""]
        lines += [f"- [{_describe(c.name)}]({c.name}/index.md)" for c in children]
        lines.append("")
    others = [p for p in files if p.suffix not in (".md", ".png")]
    if others or mds:
        lines += ["## Stored files", ""]
        lines += [f"- [`{p.name}`]({p.name})" for p in others + mds]
        lines.append("")
    return "\n".join(lines)


def _checkpoint_page(folder: Path) -> str:
    """A checkpoint folder (orbax's own layout) is one page listing its files, not a page per
    folder inside it."""
    rel = folder.relative_to(RESULTS)
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    lines = [f"# {_result_title(folder)}", ""]
    lines += [
        f"An orbax checkpoint stored in `docs/results/{rel.as_posix()}/`: {len(files)} files,"
        f" {sum(p.stat().st_size for p in files):,} bytes. It is read by the run's",
        "`commands.sh` (see the run's page above), not by hand.",
        "",
    ]
    lines += [f"- `{p.relative_to(folder).as_posix()}`" for p in files]
    return "\n".join(lines) + "\n"


def _referrers(rel: str) -> list[str]:
    """The pages under ``docs/`` that link to the results folder ``rel``."""
    pattern = re.compile(rf"results/{re.escape(rel)}(/|\))")
    return [p.name for p in sorted(DOCS.glob("*.md")) if pattern.search(p.read_text())]


def _result_summary(folder: Path) -> tuple[str, str, str]:
    """(what, machine, date) in one line each for the overview table."""
    _, comments = _commands(folder)
    prov = _provenance(folder, _result_jsons(folder), comments)
    machine = prov[0].removeprefix("**Machine:** ")
    date = next((p for p in prov if p.startswith("**Date")), "")
    date = date or next((p for p in prov if p.startswith("**Committed")), "")
    date = re.sub(r"\*\*\w+:\*\* ", "", date).split(" (")[0]
    machine = machine.split(" (")[0].rstrip(".")
    return _result_title(folder).replace("|", "\\|"), machine, date


def gen_results() -> list[str]:
    nav = ["- Results", "    - [Overview](results/index.md)"]
    for title, page in (
        ("Findings: noisy_dyn", "findings_noisy_dyn.md"),
        ("Findings: basis_ode", "findings_basis_ode.md"),
    ):
        if (DOCS / page).exists():
            nav.append(f"    - [{title}]({page})")
    overview = [
        "# Results",
        "",
        "One page per folder under `docs/results/`, generated at build time from the stored",
        "files: the tables the commands wrote, their plots, the exact commands, and the machine",
        "and date as far as the stored files record them. A folder added later gets its page",
        "without any change to the site's configuration.",
        "",
    ]
    if not RESULTS.exists():
        _write("results/index.md", "\n".join(overview))
        return nav

    def visit(folder: Path, depth: int) -> None:
        children = sorted(p for p in folder.iterdir() if p.is_dir())
        rel = folder.relative_to(RESULTS).as_posix()
        if _is_checkpoint(folder):
            children = []
            page = _checkpoint_page(folder)
        else:
            page = _result_page(folder, children)
        if not (folder / "index.md").exists():
            _write(f"results/{rel}/index.md", page)
        nav.append("    " * depth + f"- [{_nav_title(folder)}](results/{rel}/index.md)")
        for c in children:
            visit(c, depth + 1)

    for package_dir in sorted(p for p in RESULTS.iterdir() if p.is_dir()):
        nav.append(f"    - {package_dir.name}")
        overview += [
            f"## {package_dir.name}",
            "",
            "| result | what was run | machine | date |",
            "|---|---|---|---|",
        ]
        files = sorted(p for p in package_dir.iterdir() if p.is_file())
        subdirs = sorted(p for p in package_dir.iterdir() if p.is_dir())
        if not (package_dir / "index.md").exists():
            _write(f"results/{package_dir.name}/index.md", _result_page(package_dir, subdirs))
        nav[-1] = f"    - [{package_dir.name}](results/{package_dir.name}/index.md)"
        if files:  # loose files at the package level are shown on the package's page
            what, machine, date = _result_summary(package_dir)
            overview.append(
                f"| [stored files]({package_dir.name}/index.md) | {what} | {machine} | {date} |"
            )
        for folder in sorted(p for p in package_dir.iterdir() if p.is_dir()):
            visit(folder, 2)
            what, machine, date = _result_summary(folder)
            rel = folder.relative_to(RESULTS).as_posix()
            overview.append(f"| [{folder.name}]({rel}/index.md) | {what} | {machine} | {date} |")
        overview.append("")
    _write("results/index.md", "\n".join(overview))
    return nav


# ---------------------------------------------------------------------------------------------
# benchmarks

RERUN = [
    ("cpu_full", "python -m benchmarks.run --full", "the CPU suite, about 5 minutes"),
    (
        "cpu_quick",
        "python -m benchmarks.run --quick",
        "the CPU suite at small size, about 2 minutes",
    ),
    ("gpu_full", "bash benchmarks/gpu.sh", "the suite on a GPU, results to `$OUT`"),
    (
        "noisy_theory_training",
        "python -m benchmarks.noisy_theory_experiments training",
        "a Noisy RNN and its deterministic twin on digits, measured every epoch",
    ),
    (
        "stochastic_stabilization",
        "python -m benchmarks.noisy_theory_experiments stabilization",
        "the top Lyapunov exponent of an unstable Lipschitz RNN as multiplicative noise grows",
    ),
    ("cpu_idle_ensemble", "python -m benchmarks.ensemble", "ensemble against separate runs"),
    (
        "reliability",
        "python -m benchmarks.reliability_faults --seed 0",
        "fault injection on the training engine, about 5 minutes",
    ),
]


def _bench_command(stem: str, data: dict) -> str | None:
    for key in ("command", "commands"):
        if key in data:
            v = data[key]
            cmd = "\n".join(map(str, v)) if isinstance(v, list) else str(v)
            extra = data.get("command_hugetlb")
            return cmd + (f"\n{extra}" if isinstance(extra, str) else "")
    if data.get("mode") in ("full", "quick") and stem.startswith("cpu"):
        return f"python -m benchmarks.run --{data['mode']}"
    for s, cmd, _ in RERUN:
        if stem == s:
            return cmd
    return None


def _train_step_table(runs: dict[str, dict]) -> str:
    """Seconds per Noisy RNN train step by implementation, one column per stored run."""
    impls: list[str] = []
    for d in runs.values():
        impls += [i for i in d["train_step"]["impl"] if i not in impls]
    header = ["implementation"] + [f"{s} (s)" for s in runs]
    rows = []
    for i in impls:
        row = [i]
        for d in runs.values():
            r = d["train_step"]["impl"].get(i)
            row.append(f"{r['min_s']:.4g}" if r else "-")
        rows.append(row)
    rows.append(
        ["matmul roofline"] + [f"{d['train_step']['roofline_s']:.4g}" for d in runs.values()]
    )
    return _table(header, rows)


def _bench_title(stem: str, twin: Path, data: object = None) -> str:
    """What a stored benchmark run shows: its Markdown's first heading (where two runs share
    one, as the full suite on the CPU and on the GPU do, followed by what tells them apart: the
    machine, or what was counted), else what the rerun table says it runs."""
    heading = ""
    if twin.exists():
        first = twin.read_text().strip().splitlines()[:1]
        if first and first[0].startswith("# "):
            heading = first[0][2:].replace("`", "").strip()
    if heading:
        same = [
            q
            for q in BENCH.glob("*.md")
            if q != twin and q.read_text().startswith(f"# {heading}\n")
        ]
        return f"{heading}: {_bench_distinction(stem, data)}" if same else heading
    for s, _, note in RERUN:
        if s == stem and note:
            return note[:1].upper() + note[1:]
    return _describe(stem)


def _bench_distinction(stem: str, data: object) -> str:
    """What tells a run apart from another of the same heading: its machine (first part), or
    what it counted (up to a parenthesis), else its file name."""
    if isinstance(data, dict):
        found: dict[str, object] = {}
        _find_keys(data, ("machine",), found)
        if "machine" in found:
            return _machine_text(found["machine"]).split(",")[0]
        if isinstance(data.get("counted"), str):
            return data["counted"].split(" (")[0]
    return stem


def gen_benchmarks() -> list[str]:
    nav = ["- Benchmarks", "    - [Overview](benchmarks/index.md)"]
    if (DOCS / "performance.md").exists():
        nav.append("    - [What the numbers show](performance.md)")
    overview = [
        "# Benchmarks",
        "",
        "Speed and memory are measured by the scripts in `benchmarks/`, never asserted in the",
        "tests. Each run writes JSON (and usually a Markdown table and plots) to",
        "`benchmarks/results/`; the pages below are generated from those JSON files at build",
        "time. The discussion of what they show is [What the numbers show](../performance.md)."
        if (DOCS / "performance.md").exists()
        else "time.",
        "",
        "## Rerun them",
        "",
        'The PyTorch baseline needs the bench extra: `pip install -e ".[bench]"` (torch 2.13.0',
        "for the CPU build). Then, from the repository root:",
        "",
        "| command | what it runs | stored as |",
        "|---|---|---|",
    ]
    overview += [f"| `{cmd}` | {note or '-'} | [{stem}]({stem}.md) |" for stem, cmd, note in RERUN]
    overview += ["", "## Stored runs", "", "Each run's page gives its command and values.", ""]
    overview += ["| run | what it shows | machine | date |", "|---|---|---|---|"]
    suite: dict[str, dict] = {}
    for p in sorted(BENCH.glob("*.json")) if BENCH.exists() else []:
        try:
            data = json.loads(p.read_text())
        except ValueError:
            continue
        stem = p.stem
        if isinstance(data, dict) and "train_step" in data and "impl" in data["train_step"]:
            suite[stem] = data
        found: dict[str, object] = {}
        _find_keys(data, ("machine", "date", "started"), found)
        machine = (
            _machine_text(found["machine"]) if "machine" in found else "not stored in the JSON"
        )
        date = _date_text(found) or (_git_first_date(p) or "") + " (committed)"
        cmd = _bench_command(stem, data) if isinstance(data, dict) else None
        twin = p.with_suffix(".md")
        title = _bench_title(stem, twin, data)
        lines = [f"# {title}", ""]
        if twin.exists():  # the run's own Markdown first: what it measured, its tables
            body = twin.read_text().strip()
            if body.startswith("# "):
                body = body.partition("\n")[2]
            lines += [re.sub(r"^##(##+) ", r"\1 ", _inline_md_text(body), flags=re.M), ""]
        for png in sorted(BENCH.glob(f"{stem}*.png")):
            _copy_binary(png, f"benchmarks/{png.name}")
            lines += [f"## {png.stem}", "", f"![{png.stem}]({png.name})", ""]
        lines += ["## Machine and date", ""]
        lines += [f"**Machine:** {machine}.  ", f"**Date:** {date}.  "]
        lines += [f"Generated from `benchmarks/results/{p.name}`.", ""]
        if cmd:
            lines += ["## Command", "", "```bash", cmd, "```", ""]
        what = f"the values behind {twin.name}" if twin.exists() else "every stored value"
        lines += [_collapsed(f"{p.name} ({what})", json_tables(data, 3, stem)), ""]
        _write(f"benchmarks/{stem}.md", "\n".join(lines))
        nav.append(f"    - [{title}](benchmarks/{stem}.md)")
        overview.append(f"| [{stem}]({stem}.md) | {title} | {machine.split(',')[0]} | {date} |")
    jsons = {p.stem for p in BENCH.glob("*.json")} if BENCH.exists() else set()
    for p in sorted(BENCH.glob("*.md")) if BENCH.exists() else []:
        if p.stem in jsons:
            continue  # the table of a JSON run, shown on that run's page
        text = p.read_text().strip()
        head, _, body = text.partition("\n")
        title = head[2:].strip() if head.startswith("# ") else p.stem
        if not head.startswith("# "):
            body = text
        cmd = _bench_command(p.stem, {})
        # Machine and date as the file's own text states them, else the commit's date.
        m = re.search(r"[\w-]*\s*\(?\d+[- ]cores?\)?|\d+-core CPU|NVIDIA \w+", body)
        machine = m.group(0).strip() if m else "see the page"
        d = re.search(r"\d{4}-\d{2}-\d{2}(?: \d{2}:\d{2} UTC)?", body)
        date = d.group(0) if d else (_git_first_date(p) or "") + " (committed)"
        lines = [f"# {title}", "", f"Generated from `benchmarks/results/{p.name}`.", ""]
        lines += [body.strip(), ""]
        if cmd:
            lines += ["## Command", "", "```bash", cmd, "```", ""]
        _write(f"benchmarks/{p.stem}.md", "\n".join(lines))
        nav.append(f"    - [{title}](benchmarks/{p.stem}.md)")
        cell = f"`{cmd.splitlines()[0]}`" if cmd else ""
        overview.append(f"| [{p.stem}]({p.stem}.md) | {title} | {machine} | {date} | {cell} |")
    if suite:
        overview += [
            "",
            "## Noisy RNN train step, every stored suite run",
            "",
            "Minimum seconds per step (B = 128, H = 128, T = 784, value and gradient), from",
            "`train_step.impl.*.min_s` of each JSON:",
            "",
            _train_step_table(suite),
        ]
    _write("benchmarks/index.md", "\n".join(overview) + "\n")
    return nav


# ---------------------------------------------------------------------------------------------
# notebooks, changelog, navigation


def gen_notebooks() -> list[str]:
    nav = []
    books = sorted((ROOT / "notebooks").glob("*.ipynb"))
    if books:
        nav.append("- Notebooks")
    for nb in books:
        _copy_binary(nb, f"notebooks/{nb.name}")
        title = _title(nb.stem)
        try:  # the notebook's own first heading, without Markdown
            for cell in json.loads(nb.read_text())["cells"]:
                src = "".join(cell["source"]).strip()
                if cell["cell_type"] == "markdown" and src.startswith("# "):
                    title = src.splitlines()[0][2:].replace("`", "").split(":")[0].strip()
                    break
        except (ValueError, KeyError):
            pass
        nav.append(f"    - [{title}](notebooks/{nb.name})")
    return nav


def gen_changelog() -> list[str]:
    src = ROOT / "CHANGELOG.md"
    if not src.exists():
        return []
    text = src.read_text()
    # Links written relative to the repository root point into the site from docs/.
    text = re.sub(r"\]\(docs/", "](", text)
    _write("changelog.md", text)
    return ["- [Changelog](changelog.md)"]


def main() -> None:
    summary = [f"- [Home]({HOME})"]
    placed = {HOME}
    for section, pages in NAV:
        present = [(t, p) for t, p in pages if (DOCS / p).exists()]
        if present:
            summary.append(f"- {section}")
            summary += [f"    - [{t}]({p})" for t, p in present]
            placed |= {p for _, p in present}
    summary += gen_notebooks()
    summary += gen_results()
    summary += gen_benchmarks()
    summary += gen_api()
    summary += gen_changelog()
    placed |= {"findings_noisy_dyn.md", "findings_basis_ode.md", "performance.md"}
    others = sorted(p.name for p in DOCS.glob("*.md") if p.name not in placed)
    if others:
        summary.append("- More")
        summary += [f"    - [{_first_heading(DOCS / p)}]({p})" for p in others]
    _write("SUMMARY.md", "\n".join(summary) + "\n")


# mkdocs-gen-files runs this file with runpy.run_path (``__name__ == "<run_path>"``); importing
# it (to test a helper) writes nothing: outside a build, its writes would land in docs/.
if __name__ in ("__main__", "<run_path>"):
    main()
