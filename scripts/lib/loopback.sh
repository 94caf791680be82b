# Servers on loopback for the benchmarks that start `ledgerline serve`.

# free_port: prints a loopback port that was free a moment ago.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_healthy BASE LOG: waits up to 10 s for BASE/healthz to answer; if it
# never does, prints the server's LOG and fails.
wait_healthy() {
  for _ in $(seq 100); do
    curl -fsS "$1/healthz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "the server at $1 did not become healthy; its log:" >&2
  cat "$2" >&2
  return 1
}
