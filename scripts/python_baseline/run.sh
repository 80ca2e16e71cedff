#!/usr/bin/env bash
# The Python baseline (pipeline.py) in its own venv: creates ~/.cache/roadsight/pybaseline on
# first use (or when requirements.txt changed), then runs pipeline.py with the arguments given.
#   scripts/python_baseline/run.sh --input CLIP --streams 4 --frames 300 --json out.json
# Not part of CI: it is a comparison tool (see scripts/compare.sh).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
home="${ROADSIGHT_HOME:-$HOME/.cache/roadsight}"
venv="${PYBASELINE_VENV:-$home/pybaseline}"
python="${PYTHON:-python3}"

# The stamp is a copy of the pins the venv was built from: a changed pin reinstalls.
stamp="$venv/.pins.txt"
pins="$(cat "$here/requirements.txt" "$here/constraints.txt")"
if [[ ! -x "$venv/bin/python" ]] || [[ "$(cat "$stamp" 2>/dev/null)" != "$pins" ]]; then
    echo "python baseline: installing $here/requirements.txt into $venv" >&2
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        -r "$here/requirements.txt" -c "$here/constraints.txt"
    printf '%s' "$pins" >"$stamp"
fi
exec "$venv/bin/python" "$here/pipeline.py" "$@"
