# Shared by the steps: the cache for compiled code outside the clone, and the pinned tools venv.
# Sourced, not run.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/agora-ci-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# CI builds from scratch each change: incremental state only costs disk (GBs per build kind) there.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
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

# Prints a base port P such that P..P+SPAN-1 (default 8: every service of `agora up`) and any
# extra offsets given are free on 127.0.0.1.   free_base [SPAN [OFFSET...]]
free_base() {
  python3 - "${1:-8}" "${@:2}" <<'PY'
import random, socket, sys
span, extra = int(sys.argv[1]), [int(a) for a in sys.argv[2:]]
def free(p):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p)); return True
    except OSError:
        return False
    finally:
        s.close()
for _ in range(200):
    b = random.randrange(20000, 39000)
    if all(free(b + k) for k in list(range(span)) + extra):
        print(b); sys.exit(0)
sys.exit("no free port range found")
PY
}

# Starts `agora up` (debug build) on free ports with a fresh data directory and waits until it
# says it is up. Sets AGORA_BASE (the gateway's port), AGORA_DATA and AGORA_UP_PID; `stop_platform`
# (also run on exit) stops it with Ctrl-C as a user would. Arguments go to `agora up`.
start_platform() {
  cargo build --quiet -p agora
  AGORA_DATA=$(mktemp -d)
  AGORA_BASE=$(free_base)
  "$CARGO_TARGET_DIR/debug/agora" up --port "$AGORA_BASE" --data-dir "$AGORA_DATA" "$@" >"$AGORA_DATA/up.log" 2>&1 &
  AGORA_UP_PID=$!
  trap stop_platform EXIT
  for _ in $(seq 1 240); do
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
    # `agora up` gives its children up to 10 s; a bounded wait on top of that.
    for _ in $(seq 1 30); do kill -0 "$AGORA_UP_PID" 2>/dev/null || break; sleep 1; done
    kill -KILL "$AGORA_UP_PID" 2>/dev/null || true
    wait "$AGORA_UP_PID" 2>/dev/null || true
  fi
  AGORA_UP_PID=
}

# Installs the Debian packages of the commands this machine lacks (`command=package ...`): CI runs
# on fresh machines. Only as root with apt-get; elsewhere the caller finds the command missing and
# says so. The versions are those of the machine's Debian release.
need_commands() {
  local missing=() pair
  for pair in "$@"; do
    command -v "${pair%%=*}" >/dev/null || missing+=("${pair#*=}")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "   installing ${missing[*]} (apt-get)"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } >/dev/null 2>&1 ||
      echo "   apt-get install ${missing[*]} failed"
  fi
}
