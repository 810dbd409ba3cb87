# Sourced by scripts/serve and scripts/test, from the repository root.
#
# ensure_venv NAME PIP_ARGS...: make sure .venv exists and `pip install PIP_ARGS` has been done
# for the current pyproject.toml files. The install runs only when .venv is new or when the
# arguments or a pyproject.toml they name changed since the last install under NAME (a stamp
# file in .venv records that), so an unchanged checkout starts offline and at once. Sources
# under src/ are installed editable: changing them needs no reinstall.
ensure_venv() {
  local name=$1
  shift
  local stamp=".venv/.installed-$name" arg project state
  # What the install depends on: its arguments and every local project's pyproject.toml.
  state=$(
    printf '%s\n' "$*"
    for arg in "$@"; do
      project=${arg%%\[*}
      if [ -f "$project/pyproject.toml" ]; then
        sha256sum "$project/pyproject.toml"
      fi
    done
  )
  if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
    .venv/bin/python -m pip install --quiet --upgrade pip
  fi
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$state" ]; then
    return 0
  fi
  echo "Installing into .venv (pip install $*)..." >&2
  .venv/bin/python -m pip install --quiet "$@"
  printf '%s\n' "$state" >"$stamp"
}
