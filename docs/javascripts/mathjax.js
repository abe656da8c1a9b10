// MathJax 3 for pymdownx.arithmatex (generic mode): typeset \( \) and \[ \] inside .arithmatex,
// and $ $ / $$ $$ inside the notebooks' Markdown cells (mkdocs-jupyter), again after each
// instant-navigation page change of mkdocs-material. Nothing else on a page is touched.

// MathJax re-checks the class of every nested element, so the notebooks' Markdown cells and all
// their descendants are tagged as arithmatex before each typeset.
function tagNotebookMath() {
  document
    .querySelectorAll(".jp-RenderedMarkdown, .jp-RenderedMarkdown *")
    .forEach((e) => e.classList.add("arithmatex"));
}

window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"], ["$", "$"]],
    displayMath: [["\\[", "\\]"], ["$$", "$$"]],
    processEscapes: true,
    processEnvironments: true,
  },
  options: {
    ignoreHtmlClass: ".*|",
    processHtmlClass: "arithmatex",
  },
  startup: {
    pageReady: () => {
      tagNotebookMath();
      return MathJax.startup.defaultPageReady();
    },
  },
};

if (typeof document$ !== "undefined") {
  document$.subscribe(() => {
    if (window.MathJax && MathJax.typesetPromise) {
      tagNotebookMath();
      const output = MathJax.startup && MathJax.startup.output;
      if (output && typeof output.clearCache === "function") output.clearCache(); // CHTML only
      MathJax.typesetClear();
      MathJax.texReset();
      MathJax.typesetPromise();
    }
  });
}
