#!/usr/bin/env bash
# Build the one-folder application bundle with PyInstaller and prove it starts.
#
#   packaging/build.sh              # install PyInstaller, build dist/batch-classifier/, run its --self-test
#   SKIP_INSTALL=1 packaging/build.sh   # use the PyInstaller/app already installed in this environment
#   SKIP_SELF_TEST=1 packaging/build.sh # build only
#
# Run it from anywhere; it works in the repository root. Use a virtual
# environment: PyInstaller bundles whatever torch is installed (install the
# CPU-only wheels first for a ~10x smaller bundle; see packaging/README.md).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
APP_DIR="dist/batch-classifier"

case "$(uname -s)" in
    MINGW*|MSYS*|CYGWIN*) EXE="$APP_DIR/batch-classifier-cli.exe" ;;  # the console twin prints
    Darwin) EXE="$APP_DIR/batch-classifier" ;;
    *) EXE="$APP_DIR/batch-classifier" ;;
esac

if [[ "${SKIP_INSTALL:-0}" != 1 ]]; then
    echo "==> installing the app and PyInstaller"
    "$PYTHON" -m pip install ".[packaging]"
fi

echo "==> checking the icons"
"$PYTHON" packaging/render_icons.py --check || {
    echo "icons missing or stale: run '$PYTHON packaging/render_icons.py'" >&2
    exit 1
}

echo "==> building $APP_DIR"
start=$(date +%s)
"$PYTHON" -m PyInstaller --noconfirm --clean packaging/batch-classifier.spec
echo "==> built in $(( $(date +%s) - start )) s: $(du -sh "$APP_DIR" | cut -f1)"

if [[ "${SKIP_SELF_TEST:-0}" == 1 ]]; then
    exit 0
fi

echo "==> $EXE --self-test"
# No display on a build server: the self-test must not need one.
if [[ -z "${DISPLAY:-}" && -z "${WAYLAND_DISPLAY:-}" && "$(uname -s)" == Linux ]]; then
    export QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}"
fi
if ! "$EXE" --self-test; then
    echo "self-test of the built application FAILED" >&2
    exit 1
fi
echo "==> self-test passed: $EXE"
