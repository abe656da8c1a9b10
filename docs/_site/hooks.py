"""mkdocs hooks: the build fails when a public name is undocumented; the site serves MathJax.

After the site is written, every name of ``apiwalk.api_map()`` must have its anchor
(``id="<module>.<name>"``) on its module's page. A name that mkdocstrings could not render
(an unresolvable alias, a misspelt ``__all__`` entry), or a public function or class without a
docstring, therefore stops ``mkdocs build``, strict or not, instead of leaving a silent hole in
the reference.
"""

from __future__ import annotations

import os
import re
import sys
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


def on_post_build(config, **kwargs) -> None:
    site = Path(config["site_dir"])
    missing = []
    for module, names in apiwalk.api_map().items():
        page = site / "reference" / module / "index.html"
        if not page.exists():
            missing.append(f"{module} (no page)")
            continue
        html = page.read_text()
        if f'id="{module}"' not in html:
            missing.append(module)
        missing += [f"{module}.{n}" for n in names if f'id="{module}.{n}"' not in html]
    missing += [f"{n} (no docstring)" for n in apiwalk.undocumented()]
    if missing:
        raise PluginError(
            f"{len(missing)} public names have no entry in the API reference: "
            + ", ".join(missing[:40])
        )


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
    """Add the MathJax bundle to the site's files (copied, so the site works offline)."""
    from mkdocs.structure.files import File

    files.append(File.generated(config, _LOCAL, abs_src_path=str(mathjax_bundle())))
    return files
