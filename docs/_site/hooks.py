"""mkdocs hooks: the build fails when a public name is undocumented; the site serves MathJax;
the navigation file is not a page.

After the site is written, every name of ``apiwalk.api_map()`` must have its anchor
(``id="<module>.<name>"``) on exactly one page of the reference (laid out by topic in
``gen_pages.py``; a name two modules export is one entry there and one pointer). A name that
mkdocstrings could not render (an unresolvable alias, a misspelt ``__all__`` entry), or a public
function or class without a docstring, therefore stops ``mkdocs build``, strict or not, instead
of leaving a silent hole in the reference.
"""

from __future__ import annotations

import os
import re
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import apiwalk  # noqa: E402
from mkdocs.exceptions import PluginError  # noqa: E402

_ROLE = re.compile(r":(?:func|class|meth|data|attr|mod|obj|exc|py:\w+):(<code>[^<]*</code>)")


def _role(m: re.Match) -> str:
    code = m.group(1)
    if code.startswith("<code>~"):  # Sphinx's ``~a.b.c``: shown as its last part, ``c``
        code = "<code>" + code[len("<code>~") : -len("</code>")].rsplit(".", 1)[-1] + "</code>"
    return code


def on_page_content(html: str, **kwargs) -> str:
    """Docstrings written with Sphinx roles (``:func:`fit```) show the name as code, no role
    (and ``:class:`~noisy_dyn.ItoNoise``` as ``ItoNoise``, as Sphinx would)."""
    return _ROLE.sub(_role, html)


_DIR_LINK = re.compile(r"\]\(((?:\.\./)*[\w.-]+(?:/[\w.-]+)*)/?\)")


def _stored_table_title(markdown: str, page, files) -> str:
    """A Markdown table a run stored beside its files (``study.md``, ``sweep.md``) is a page of
    its own too; it gets a first heading naming it and the run it belongs to (the title of the
    folder's generated page), so that no page is titled by its file name alone."""
    src = page.file.src_uri
    name = Path(src).name
    if name in ("index.md", "README.md") or markdown.lstrip().startswith("# "):
        return markdown
    index = files.get_file_from_path(str(Path(src).parent / "index.md")) if files else None
    run = ""
    if index is not None:
        first = index.content_string.lstrip().split("\n", 1)[0]
        run = first[2:].strip() if first.startswith("# ") else ""
    title = f"{run}: {name}" if run else f"The stored table {name}"
    return f"# {title}\n\n{markdown}"


def on_page_markdown(markdown: str, page, files=None, **kwargs) -> str:
    """A stored results README links a folder as ``[attempt1/](attempt1/)`` or
    ``[../study_digits](../study_digits)``, which reads on GitHub; on the site the folder is a
    page, so the link points at its ``index.md``."""
    src = page.file.src_uri
    if not src.startswith("results/"):
        return markdown
    markdown = _stored_table_title(markdown, page, files)
    here = apiwalk.ROOT / "docs" / Path(src).parent

    def fix(m: re.Match) -> str:
        return f"]({m.group(1)}/index.md)" if (here / m.group(1)).is_dir() else m.group(0)

    return _DIR_LINK.sub(fix, markdown)


def on_post_build(config, **kwargs) -> None:
    site = Path(config["site_dir"])
    ids: Counter[str] = Counter()
    for page in (site / "reference").rglob("*.html"):
        ids.update(_ID.findall(page.read_text()))
    missing, twice = [], []
    for module, names in apiwalk.api_map().items():
        for key in [module, *(f"{module}.{n}" for n in names)]:
            if not ids[key]:
                missing.append(key)
            elif ids[key] > 1:
                twice.append(key)
    missing += [f"{n} (no docstring)" for n in apiwalk.undocumented()]
    if missing:
        raise PluginError(
            f"{len(missing)} public names have no entry in the API reference: "
            + ", ".join(missing[:40])
        )
    if twice:
        raise PluginError(
            f"{len(twice)} public names have more than one entry in the API reference: "
            + ", ".join(twice[:40])
        )


_ID = re.compile(r'\bid="([^"]+)"')


_LOCAL = "javascripts/vendor/mathjax/tex-svg.js"
"""Where the site serves MathJax from: a copy made at build time, never a CDN."""


def mathjax_bundle() -> Path:
    """The MathJax 3 single-file bundle ``es5/tex-svg.js`` (SVG output, fonts inside the file)
    of the ``django-static-mathjax`` package in the docs extra (no Django needed: it is MathJax's
    own distribution as package data), or ``$DOCS_MATHJAX`` when set."""
    local = os.environ.get("DOCS_MATHJAX")
    if local:
        path = Path(local)
    else:
        try:
            import mathjax  # django-static-mathjax's package: static/mathjax/es5/...
        except ImportError as e:
            raise RuntimeError(
                "the docs need MathJax from the docs extra: pip install -e '.[docs]' "
                "(django-static-mathjax), or set DOCS_MATHJAX=/path/to/es5/tex-svg.js"
            ) from e
        path = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5" / "tex-svg.js"
    if not path.is_file():
        raise RuntimeError(f"no MathJax bundle at {path}; reinstall the docs extra")
    return path


def on_config(config, **kwargs):
    """Serve MathJax from the site itself: the page script list gets the local copy."""
    scripts = config["extra_javascript"]
    if _LOCAL not in [str(s) for s in scripts]:
        scripts.append(_LOCAL)
    return config


def on_files(files, config, **kwargs):
    """Add the MathJax bundle to the site's files (copied, so the site works offline), and keep
    ``SUMMARY.md`` out of the site: it is the navigation that mkdocs-literate-nav has read by
    now (hooks run after the plugins), not a page to publish or to index for search."""
    from mkdocs.structure.files import File, InclusionLevel

    files.append(File.generated(config, _LOCAL, abs_src_path=str(mathjax_bundle())))
    summary = files.get_file_from_path("SUMMARY.md")
    if summary is not None:
        summary.inclusion = InclusionLevel.EXCLUDED
    return files
