#!/usr/bin/env bash
# The whole test suite. The web console's end-to-end tests drive a real headless browser, so
# this installs Debian's chromium and chromedriver first when they are missing (needs root or
# sudo and Debian's package archive); everything else needs only the Rust toolchain and gcc.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromedriver >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1; then
  echo "== installing chromium and chromium-driver (browser tests of the web console)"
  SUDO=""
  if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq chromium chromium-driver fonts-dejavu-core >/dev/null
fi

# The gateway's API is checked with schemathesis (PyPI) against the OpenAPI document it serves
# (tests/tests/gateway_schemathesis.rs, fixed seed, bounded examples).
if ! command -v schemathesis >/dev/null 2>&1; then
  echo "== installing schemathesis (API conformance test of the gateway)"
  python3 -m pip install --quiet --user "schemathesis>=4,<5" || python3 -m pip install --quiet "schemathesis>=4,<5"
fi
# Where pip puts scripts, for --user installs and for the interpreter's own (pyenv shims appear
# only after a rehash).
PATH="$HOME/.local/bin:$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$PATH"
export PATH
export TRACENET_REQUIRE_SCHEMATHESIS=1

cargo test --workspace "$@"
