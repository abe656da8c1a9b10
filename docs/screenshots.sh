#!/usr/bin/env bash
# Build the site and photograph pages with headless Chromium (Debian: apt-get install chromium).
#
#   bash docs/screenshots.sh [OUT_DIR] [PAGE ...]
#
# PAGE is a path inside the site (default: the home page, an API page, a results page, the
# theory page and a benchmarks page); the PNGs go to OUT_DIR (default site-screenshots/).
# Without internet the maths would not render (the site loads MathJax from jsDelivr), so
# DOCS_MATHJAX may name a local MathJax 3 bundle (es5/tex-svg.js); if unset and `npm` is
# available, the bundle is fetched once with `npm pack mathjax@3` into ~/.cache/mathjax3.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-site-screenshots}
shift || true
pages=("$@")
if [ ${#pages[@]} -eq 0 ]; then
  pages=("" "reference/noisy_dyn/" "results/noisy_dyn/demo_tradeoff/" "derivations/"
         "benchmarks/")
fi
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$browser" ]; then
  echo "error: no Chromium found; install it with: apt-get install -y chromium" >&2
  exit 2
fi
if [ -z "${DOCS_MATHJAX:-}" ] && command -v npm >/dev/null 2>&1; then
  cache="$HOME/.cache/mathjax3"
  if [ ! -f "$cache/package/es5/tex-svg.js" ]; then
    mkdir -p "$cache" && (cd "$cache" && npm pack --silent mathjax@3 >/dev/null && tar xzf mathjax-*.tgz)
  fi
  export DOCS_MATHJAX="$cache/package/es5/tex-svg.js"
fi
site=$(mktemp -d)
DISABLE_MKDOCS_2_WARNING=true NO_MKDOCS_2_WARNING=1 python -m mkdocs build -q -d "$site"
port=${PORT:-8765}
python -m http.server "$port" --bind 127.0.0.1 --directory "$site" >/dev/null 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -rf "$site"' EXIT
sleep 1
mkdir -p "$out"
for page in "${pages[@]}"; do
  name=$(echo "${page:-home}" | tr '/' '_' | sed 's/_$//')
  "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars \
    --window-size=1280,1600 --virtual-time-budget=8000 \
    --screenshot="$out/$name.png" "http://127.0.0.1:$port/$page" >/dev/null 2>&1
  echo "$out/$name.png"
done
