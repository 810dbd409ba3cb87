# Sourced by scripts/serve and scripts/test, from the repository root.
#
# ensure_ui: make sure the web app (web/ui) is built into src/mailmark/web/static/ui for the
# current sources. `npm ci` runs only when package-lock.json changed since the last install, the
# build only when a source, the lock or the build config changed since the last build (stamp
# files record both), so an unchanged checkout starts at once and offline.
ensure_ui() {
  local ui=web/ui out=src/mailmark/web/static/ui
  local install_stamp="$ui/node_modules/.installed-lock" build_stamp="$out/.built-from" lock state
  if ! command -v npm >/dev/null 2>&1; then
    if [ -f "$out/index.html" ]; then
      echo "npm is not installed: serving the web app as last built." >&2
      return 0
    fi
    echo "npm is not installed, so the web app is not built (its pages answer 503): install Node.js >= 20 and npm." >&2
    return 0
  fi
  lock=$(sha256sum "$ui/package-lock.json")
  if [ ! -f "$install_stamp" ] || [ "$(cat "$install_stamp")" != "$lock" ]; then
    echo "Installing the web app's packages (npm ci)..." >&2
    (cd "$ui" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    printf '%s\n' "$lock" >"$install_stamp"
  fi
  # What the build depends on: every tracked or new file under web/ui except installed packages.
  state=$(
    cd "$ui" &&
      find . -path ./node_modules -prune -o -type f -print | LC_ALL=C sort | xargs -d '\n' sha256sum
  )
  state=$(printf '%s\n' "$state" | sha256sum)
  if [ -f "$out/index.html" ] && [ -f "$build_stamp" ] && [ "$(cat "$build_stamp")" = "$state" ]; then
    return 0
  fi
  echo "Building the web app (web/ui changed)..." >&2
  (cd "$ui" && npm run --silent build -- --logLevel error)
  printf '%s\n' "$state" >"$build_stamp"
}
