# `scripts/bench console`: how long the console's Dispute page takes to
# answer, in headless Chromium against a release server on the demo's data.
# The baseline, in the same run, is the demo's 12-second cover as
# distributed (answered by its Content Credentials); the measured files are
# 3 minutes long: that cover followed by unrelated audio, as WAV and as MP3
# (answered by fingerprint), and 3 minutes of audio the log does not know.
# Two times: from choosing the file to the answer on the page, upload
# included (loopback), and from the upload's end to the answer (Resource
# Timing and the server's Server-Timing). Goal: each 3-minute answer within
# 1 s of the upload's end.
#   scripts/bench console [--runs N]

bench_console() {
  local runs=5
  while (($#)); do
    case "$1" in
      --runs) runs="$2"; shift 2 ;;
      *) echo "scripts/bench console: unknown option $1" >&2; return 2 ;;
    esac
  done
  ensure_packages chromium chromium-driver lame python3-venv
  local venv=target/browser-venv
  if ! "$venv/bin/python" -c "import selenium" >/dev/null 2>&1; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "selenium==4.51.0"
  fi
  echo "==> cargo build --release (the ledgerline binary)"
  cargo build --release --bin ledgerline
  local binary="${CARGO_TARGET_DIR:-target}/release/ledgerline"
  local work
  work=$(mktemp -d)
  local data="$work/data" server_pid=""
  trap '[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' RETURN
  echo "==> ledgerline demo (the data the console is measured on)"
  "$binary" --data "$data" demo >"$work/demo.log"
  # The demo's cover: the derivative whose lineage names a voice model.
  local cover="" f
  for f in "$data"/demo/*.wav; do
    if "$binary" --data "$data" lineage "$f" |
      python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["voice_models"] else 1)'; then
      cover="$f"
      break
    fi
  done
  [ -n "$cover" ] || { echo "scripts/bench console: the demo made no cover" >&2; return 1; }
  python3 scripts/lib/bench_console_files.py "$cover" "$work"
  lame --quiet -b 128 "$work/cover-3min.wav" "$work/cover-3min.mp3"
  local token
  token=$("$binary" --data "$data" keys create --role auditor | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  local port
  port=$(free_port)
  "$binary" --data "$data" serve --listen "127.0.0.1:$port" >"$work/server.log" 2>&1 &
  server_pid=$!
  wait_healthy "http://127.0.0.1:$port" "$work/server.log" || return 1
  echo "console bench: release server on loopback, demo data, $runs runs per file, $(nproc) cores"
  PYTHONPATH=tests/console "$venv/bin/python" scripts/lib/bench_console.py \
    "http://127.0.0.1:$port/" "$token" "$runs" \
    "$cover" "$work/cover-3min.wav" "$work/cover-3min.mp3" "$work/unknown-3min.wav"
}
