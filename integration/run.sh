#!/usr/bin/env bash
# Run the integration suite against a NeMo RL checkout.
#
#   integration/run.sh [NEMO_RL_CHECKOUT] [pytest args...]
#
# The checkout comes from the first argument or $NEMO_RL_ROOT. A CPU venv for it is built once
# (cached by checkout commit + dependency list) at $NEMO_RL_VENV (default <checkout>/.venv-cpu),
# following the CPU recipe pinned in integration/pins.toml: NeMo RL installed editable without its
# dependencies (its pyproject needs git-only and CUDA-only packages), then the CPU dependency set.
# Our package is installed into that venv editable, and pytest runs integration/ there.
# Pinned commits (integration/pins.toml) are reported; another commit runs with a warning.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"

checkout="${1:-${NEMO_RL_ROOT:-}}"
if [[ $# -gt 0 ]]; then shift; fi
if [[ -z "$checkout" || ! -d "$checkout/nemo_rl" ]]; then
    echo "usage: integration/run.sh <NeMo RL checkout> [pytest args]  (or set NEMO_RL_ROOT)" >&2
    echo "no NeMo RL checkout at '${checkout}'" >&2
    exit 2
fi
checkout="$(cd "$checkout" && pwd)"
python="${NEMO_RL_BASE_PYTHON:-python3.11}"
venv="${NEMO_RL_VENV:-$checkout/.venv-cpu}"

read_pins() {
    "$python" - "$here/pins.toml" "$@" <<'PY'
import sys, tomllib
pins = tomllib.load(open(sys.argv[1], "rb"))
if sys.argv[2] == "packages":
    print("\n".join(pins["cpu_venv"]["packages"]))
else:
    commit = sys.argv[3]
    names = [n for n, p in pins["nemo_rl"].items() if p["commit"].startswith(commit) or commit.startswith(p["commit"])]
    print(names[0] if names else "")
PY
}

commit="$(git -C "$checkout" rev-parse HEAD 2>/dev/null || cat "$checkout/.commit" 2>/dev/null || echo unknown)"
pin="$(read_pins commit "$commit")"
if [[ -n "$pin" ]]; then
    echo "NeMo RL $commit (pinned as '$pin')"
else
    echo "WARNING: NeMo RL $commit is not one of the commits pinned in integration/pins.toml" >&2
fi

mapfile -t packages < <(read_pins packages)
stamp="$commit $(printf '%s\n' "${packages[@]}" | sha256sum | cut -c1-16)"
if [[ -f "$venv/.nemo_rl_stamp" && "$(cat "$venv/.nemo_rl_stamp")" == "$stamp" ]]; then
    echo "reusing $venv"
else
    echo "building $venv (several minutes)"
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/pip" install -q --upgrade pip
    "$venv/bin/pip" install -q -e "$checkout" --no-deps --ignore-requires-python
    "$venv/bin/pip" install -q "${packages[@]}"
    printf '%s' "$stamp" > "$venv/.nemo_rl_stamp"
fi
"$venv/bin/pip" install -q -e "$repo"
# NeMo RL's config overrides go through hydra-core, whose parser is generated for ANTLR 4.9 and
# which needs omegaconf < 2.4: a dependency of ours must not replace those in NeMo RL's venv.
mapfile -t hydra_pins < <("$venv/bin/python" - <<'PY'
from importlib import metadata
for req in metadata.requires("hydra-core") or []:
    if req.startswith(("antlr4-python3-runtime", "omegaconf")):
        print(req.split(";")[0].replace(" ", ""))
PY
)
if [[ ${#hydra_pins[@]} -gt 0 ]]; then
    "$venv/bin/pip" install -q "${hydra_pins[@]}" 2>&1 | grep -v "^WARNING: Location" || true
fi

cd "$repo"
export NEMO_RL_ROOT="$checkout"
exec "$venv/bin/python" -m pytest integration -p no:cacheprovider -W ignore::DeprecationWarning "$@"
