#!/usr/bin/env bash
# Builds the crawler egg and uploads it to scrapyd, without touching the work tree.
#
#   deploy/scrapyd-deploy.sh [TARGET]        TARGET: a [deploy:NAME] of scrapy.cfg (default: default)
#
# scrapyd-deploy writes setup.py, build/ and *.egg-info where it runs, so it runs in a staged copy
# of the project. The egg carries the packages and the `scrapy` settings entry point declared in
# pyproject.toml. Environment:
#   SCRAPYD_URL                    deploy to this URL instead of TARGET's (target `env`)
#   SCRAPYD_USERNAME/_PASSWORD     credentials (else ~/.netrc for the host)
#   SCRAPYD_VENV                   the scrapyd environment (default: .venv-scrapyd, created)
#   SCRAPYD_VERSION                version label of the upload (default: a timestamp)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${SCRAPYD_VENV:-$root/.venv-scrapyd}"
"$root/deploy/scrapyd-venv.sh" "$venv" >/dev/null

stage="$(mktemp -d "${TMPDIR:-/tmp}/noticecrawler-egg.XXXXXX")"
trap 'rm -rf "$stage"' EXIT
tar -C "$root" --exclude=__pycache__ --exclude='*.pyc' -cf - \
    scrapy.cfg pyproject.toml noticecrawler dispatch $(cd "$root" && ls README* 2>/dev/null) \
    | tar -C "$stage" -xf -
printf 'from setuptools import setup\n\nsetup()\n' > "$stage/setup.py"

target="${1:-default}"
if [ -n "${SCRAPYD_URL:-}" ]; then
    target=env
    printf '\n[deploy:env]\nurl = %s\nproject = noticecrawler\n' "$SCRAPYD_URL" >> "$stage/scrapy.cfg"
fi
if [ -n "${SCRAPYD_USERNAME:-}" ]; then
    # scrapyd-client expands ${VARS} in scrapy.cfg: the secret stays in the environment
    python3 - "$stage/scrapy.cfg" "$target" <<'PY'
import configparser, sys
path, target = sys.argv[1], sys.argv[2]
cfg = configparser.RawConfigParser()
cfg.read(path)
section = "deploy" if target == "default" else f"deploy:{target}"
cfg.set(section, "username", "${SCRAPYD_USERNAME}")
cfg.set(section, "password", "${SCRAPYD_PASSWORD}")
with open(path, "w") as f:
    cfg.write(f)
PY
fi
cd "$stage"
args=("$target" -p noticecrawler)
[ -n "${SCRAPYD_VERSION:-}" ] && args+=(-v "$SCRAPYD_VERSION")
"$venv/bin/scrapyd-deploy" "${args[@]}"
