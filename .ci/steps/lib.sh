# Shared by the steps: the cache for compiled code outside the clone, and the pinned tools venv.
# Sourced, not run.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/agora-ci-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
AGORA_TOOLS_VENV="${AGORA_TOOLS_VENV:-$HOME/.cache/agora-tools-venv}"

# Installs pinned Python packages into the tools venv when one is missing; prints nothing when all are there.
tools_venv() {
  if [ ! -x "$AGORA_TOOLS_VENV/bin/python" ]; then
    python3 -m venv "$AGORA_TOOLS_VENV"
  fi
  local missing=()
  for spec in "$@"; do
    "$AGORA_TOOLS_VENV/bin/pip" show "${spec%%==*}" >/dev/null 2>&1 || missing+=("$spec")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    "$AGORA_TOOLS_VENV/bin/pip" install --quiet --disable-pip-version-check "${missing[@]}"
  fi
}

# Starts `agora up` (debug build) on free ports with a fresh data directory and waits until it
# says it is up. Sets AGORA_BASE (the gateway's port), AGORA_DATA and AGORA_UP_PID; `stop_platform`
# (also run on exit) stops it with Ctrl-C as a user would.
start_platform() {
  cargo build --quiet -p agora
  AGORA_DATA=$(mktemp -d)
  AGORA_BASE=$(python3 -c 'import random, socket
def free(p):
    s = socket.socket(); 
    try: s.bind(("127.0.0.1", p)); return True
    except OSError: return False
    finally: s.close()
while True:
    b = random.randrange(20000, 40000)
    if all(free(b + k) for k in range(8)): print(b); break')
  "$CARGO_TARGET_DIR/debug/agora" up --port "$AGORA_BASE" --data-dir "$AGORA_DATA" "$@" >"$AGORA_DATA/up.log" 2>&1 &
  AGORA_UP_PID=$!
  trap stop_platform EXIT
  for _ in $(seq 1 180); do
    grep -q "Press Ctrl-C" "$AGORA_DATA/up.log" && return 0
    kill -0 "$AGORA_UP_PID" 2>/dev/null || break
    sleep 1
  done
  echo "agora up did not come up:" >&2
  cat "$AGORA_DATA/up.log" >&2
  return 1
}

stop_platform() {
  if [ -n "${AGORA_UP_PID:-}" ] && kill -0 "$AGORA_UP_PID" 2>/dev/null; then
    kill -INT "$AGORA_UP_PID"
    wait "$AGORA_UP_PID" 2>/dev/null || true
  fi
  AGORA_UP_PID=
}
