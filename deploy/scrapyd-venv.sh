#!/usr/bin/env bash
# Creates the scrapyd environment: scrapyd and scrapyd-client need setuptools<81 (they build and
# load eggs), so they get a venv of their own. The project's dependencies are installed into it,
# the project itself is not: scrapyd runs the egg that `scrapyd-deploy` uploads.
#
#   deploy/scrapyd-venv.sh [VENV]      (default: .venv-scrapyd next to pyproject.toml)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${1:-$root/.venv-scrapyd}"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/scrapyd" ] || [ ! -x "$venv/bin/scrapyd-deploy" ]; then
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet "setuptools<81" wheel "scrapyd>=1.5" "scrapyd-client>=2"
    "$venv/bin/python" - "$root/pyproject.toml" > "$venv/project-requirements.txt" <<'PY'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    print("\n".join(tomllib.load(f)["project"]["dependencies"]))
PY
    "$venv/bin/python" -m pip install --quiet -r "$venv/project-requirements.txt"
fi
echo "$venv"
