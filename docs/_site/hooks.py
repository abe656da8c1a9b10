"""mkdocs hooks: the build fails when a public name is undocumented; MathJax may be local.

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


MATHJAX_CDN = "https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js"
_LOCAL = "javascripts/vendor/mathjax.js"


def on_config(config, **kwargs):
    """With ``DOCS_MATHJAX=/path/to/mathjax/es5/tex-svg.js``, serve that copy instead of the CDN.

    The published site loads MathJax from jsDelivr; a machine without internet (the screenshot
    script) points this at a local MathJax 3 bundle so the maths still renders.
    """
    local = os.environ.get("DOCS_MATHJAX")
    if local:
        scripts = config["extra_javascript"]
        for i, s in enumerate(scripts):
            if str(s) == MATHJAX_CDN:
                scripts[i] = _LOCAL
    return config


def on_files(files, config, **kwargs):
    local = os.environ.get("DOCS_MATHJAX")
    if local:
        from mkdocs.structure.files import File

        files.append(File.generated(config, _LOCAL, abs_src_path=local))
    return files
