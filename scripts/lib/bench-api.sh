# `scripts/bench api`: the HTTP API under load with wrk, against the
# embedded store on loopback. Prints requests/s and latency for GET /healthz
# (the HTTP stack alone: the baseline, run in the same script), single-event
# appends, inclusion proofs and full tlog-tiles tiles, each with its ratio to
# the baseline and to the goal (appends >= 5,000/s at p99 <= 50 ms; proofs
# >= 20,000/s; proofs and full tiles >= 0.8 of the baseline).
# Then appends on fresh logs whose server asks two witnesses or none
# (`serve --witness-policy`, quorum 2, two `ledgerline witness` processes on
# loopback), alternated twice: witnessing must add no latency to
# acknowledged appends (mean p99 within 1.2x of the runs without).
#   scripts/bench api [--seconds S] [--connections C]

bench_api() {
  local seconds=10 connections=64
  while (($#)); do
    case "$1" in
      --seconds) seconds="$2"; shift 2 ;;
      --connections) connections="$2"; shift 2 ;;
      *) echo "scripts/bench api: unknown option $1" >&2; return 2 ;;
    esac
  done
  ensure_packages wrk
  echo "==> cargo build --release (the ledgerline binary)"
  cargo build --release --bin ledgerline
  local binary="${CARGO_TARGET_DIR:-target}/release/ledgerline"
  local work
  work=$(mktemp -d)
  local data="$work/data" server_pid="" witness_pids=""
  trap 'for pid in $server_pid $witness_pids; do kill "$pid" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$work"' RETURN
  local token
  token=$("$binary" --data "$data" keys create --role admin | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  local port
  port=$(free_port)
  "$binary" --data "$data" serve --listen "127.0.0.1:$port" >"$work/server.log" 2>&1 &
  server_pid=$!
  local base="http://127.0.0.1:$port"
  wait_healthy "$base" "$work/server.log" || return 1

  local threads=2
  echo "api bench: $base, embedded store, $connections connections, $threads wrk threads, ${seconds}s per workload, $(nproc) cores"
  # run_wrk MODE: prints "requests_per_s p50_ms p99_ms non2xx socket_errors".
  run_wrk() {
    local line
    line=$(LEDGERLINE_BENCH_MODE="$1" LEDGERLINE_BENCH_TOKEN="$token" LEDGERLINE_BENCH_SIZE="${2:-1}" \
      wrk -t"$threads" -c"$connections" -d"${seconds}s" --timeout 10s -s scripts/lib/bench-api.lua "$base" | grep '^BENCH ')
    python3 - "$line" <<'PY'
import sys
fields = dict(kv.split("=") for kv in sys.argv[1].split()[1:])
rate = int(fields["requests"]) / (int(fields["duration_us"]) / 1e6)
print(f'{rate:.0f} {int(fields["p50_us"]) / 1000:.2f} {int(fields["p99_us"]) / 1000:.2f} {fields["non2xx"]} {fields["socket_errors"]}')
PY
  }
  read -r base_rate base_p50 base_p99 base_bad base_err < <(run_wrk healthz)
  read -r append_rate append_p50 append_p99 append_bad append_err < <(run_wrk append)
  local size
  size=$(curl -fsS "$base/v1/checkpoint" | sed -n 2p)
  read -r proof_rate proof_p50 proof_p99 proof_bad proof_err < <(run_wrk inclusion "$size")
  read -r tile_rate tile_p50 tile_p99 tile_bad tile_err < <(run_wrk tile "$size")

  kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""

  # Witnessing: single-event appends on a fresh log, its server with or
  # without `--witness-policy` (two witnesses on loopback, quorum 2; both
  # run either way, so the machine is as loaded), alternated twice since
  # runs on a shared machine vary by more than the effect looked for.
  # witnessed_run with|without N: prints "requests_per_s p50_ms p99_ms non2xx
  # socket_errors witnessed_size appended_size".
  witnessed_run() {
    local run="$work/run$2" policy="$work/run$2/witnesses.policy"
    mkdir -p "$run"
    token=$("$binary" --data "$run/log" keys create --role admin | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
    "$binary" --data "$run/log" append --stream bench-setup --type bench.setup --data '{}' >/dev/null
    local log_key
    log_key=$("$binary" --data "$run/log" key)
    echo "quorum 2" >"$policy"
    for w in 1 2; do
      local wport
      wport=$(free_port)
      echo "witness w$w $("$binary" witness key --data "$run/w$w" --name "w$w.bench.local") http://127.0.0.1:$wport" >>"$policy"
      "$binary" witness serve --data "$run/w$w" --listen "127.0.0.1:$wport" --log "$log_key" >"$run/w$w.log" 2>&1 &
      witness_pids="$witness_pids $!"
    done
    local options=()
    [ "$1" = with ] && options=(--witness-policy "$policy")
    "$binary" --data "$run/log" serve --listen "127.0.0.1:$port" "${options[@]}" >"$run/server.log" 2>&1 &
    server_pid=$!
    wait_healthy "$base" "$run/server.log" || return 1
    local result appended witnessed=0
    result=$(run_wrk append)
    appended=$(curl -fsS "$base/v1/checkpoint" | sed -n 2p)
    if [ "$1" = with ]; then
      for _ in $(seq 100); do
        witnessed=$(curl -fsS "$base/v1/checkpoint?witnessed=true" 2>/dev/null | sed -n 2p || true)
        [ "${witnessed:-0}" = "$appended" ] && break
        sleep 0.1
      done
    fi
    kill "$server_pid" $witness_pids; wait "$server_pid" $witness_pids 2>/dev/null || true
    server_pid="" witness_pids=""
    echo "$result ${witnessed:-0} $appended"
  }
  local without1 with1 without2 with2
  without1=$(witnessed_run without 1); with1=$(witnessed_run with 2)
  without2=$(witnessed_run without 3); with2=$(witnessed_run with 4)
  python3 - <<PY
# (name, req/s, p50, p99, non-2xx, socket errors, goal req/s, goal p99 ms,
#  goal ratio to the baseline)
rows = [
    ("healthz (baseline)", $base_rate, $base_p50, $base_p99, $base_bad, $base_err, None, None, None),
    ("append 1 event", $append_rate, $append_p50, $append_p99, $append_bad, $append_err, 5000, 50.0, None),
    ("inclusion proof", $proof_rate, $proof_p50, $proof_p99, $proof_bad, $proof_err, 20000, None, 0.8),
    ("full tile (level 0)", $tile_rate, $tile_p50, $tile_p99, $tile_bad, $tile_err, None, None, 0.8),
]
print(f"{'workload':<20}{'req/s':>9}{'p50_ms':>9}{'p99_ms':>9}{'non2xx':>8}{'sock_err':>9}{'vs_base':>9}{'goal_req/s':>12}{'goal_vs_base':>14}  verdict")
for name, rate, p50, p99, bad, err, goal, p99_goal, ratio_goal in rows:
    ratio = rate / $base_rate
    verdict = "-"
    if goal or ratio_goal:
        met = bad == 0 and err == 0
        met = met and (goal is None or rate >= goal)
        met = met and (p99_goal is None or p99 <= p99_goal)
        met = met and (ratio_goal is None or ratio >= ratio_goal)
        verdict = "met" if met else "MISSED"
    print(f"{name:<20}{rate:>9.0f}{p50:>9.2f}{p99:>9.2f}{bad:>8}{err:>9}{ratio:>9.2f}{goal or '-':>12}{ratio_goal or '-':>14}  {verdict}")
print(f"log size after the run: $size events (checkpoint)")
runs = [("without", "$without1"), ("with", "$with1"), ("without", "$without2"), ("with", "$with2")]
print()
print("appends with and without witnessing (fresh logs; two witnesses, quorum 2):")
print(f"{'run':<20}{'req/s':>9}{'p50_ms':>9}{'p99_ms':>9}{'non2xx':>8}{'sock_err':>9}  witnessed")
p99 = {"without": [], "with": []}
clean = True
for kind, line in runs:
    rate, p50, p99_ms, bad, err, witnessed, appended = line.split()
    p99[kind].append(float(p99_ms))
    clean = clean and bad == "0" and err == "0"
    note = f"{witnessed} of {appended} events" if kind == "with" else "-"
    print(f"{kind + ' witnesses':<20}{float(rate):>9.0f}{float(p50):>9.2f}{float(p99_ms):>9.2f}{bad:>8}{err:>9}  {note}")
ratio = (sum(p99["with"]) / 2) / (sum(p99["without"]) / 2)
verdict = "met" if ratio <= 1.2 and clean else "MISSED"
print(f"witnessing: mean append p99 {ratio:.2f}x of the runs without (goal <= 1.2x, noise included: {verdict})")
PY
}
