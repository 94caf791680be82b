# Shared by scripts/*: a throwaway PostgreSQL cluster for the tests.
# Source scripts/lib/packages.sh first (for ensure_packages).

# postgres_bindir: prints the directory of initdb/pg_ctl/postgres (Debian keeps
# them off PATH, under /usr/lib/postgresql/<major>/bin).
postgres_bindir() {
  local dir
  if command -v pg_config >/dev/null 2>&1; then
    dir=$(pg_config --bindir 2>/dev/null || true)
    if [ -x "$dir/initdb" ]; then echo "$dir"; return 0; fi
  fi
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$dir/initdb" ]; then echo "$dir"; return 0; fi
  done
  return 1
}

# free_port: prints a TCP port on 127.0.0.1 that nothing listens on now.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# as_postgres_user CMD...: initdb and postgres refuse to run as root; when
# root, run them as the `postgres` OS user that Debian's package creates.
as_postgres_user() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# start_test_postgres: initdb into a new temporary directory, start the server
# on a free loopback port with trust authentication for 127.0.0.1 only, and
# export LEDGERLINE_TEST_POSTGRES_URL (an admin URL: tests create their own
# databases), LEDGERLINE_TEST_PG_BINDIR (for the tests that run their own
# cluster) and LEDGERLINE_REQUIRE_POSTGRES=1 (so no PostgreSQL test can skip).
# stop_test_postgres undoes it; call it from the caller's EXIT trap.
start_test_postgres() {
  ensure_packages postgresql python3
  local bindir
  bindir=$(postgres_bindir) || { echo "no PostgreSQL server binaries found" >&2; return 1; }
  TEST_POSTGRES_DIR=$(mktemp -d -t ledgerline-pg.XXXXXX)
  if [ "$(id -u)" -eq 0 ]; then chown postgres: "$TEST_POSTGRES_DIR"; fi
  local port
  port=$(free_port)
  echo "==> starting PostgreSQL ($bindir) on 127.0.0.1:$port in $TEST_POSTGRES_DIR"
  as_postgres_user "$bindir/initdb" -D "$TEST_POSTGRES_DIR/data" -U postgres \
    --encoding=UTF8 --no-locale >"$TEST_POSTGRES_DIR/initdb.log" 2>&1 \
    || { cat "$TEST_POSTGRES_DIR/initdb.log" >&2; return 1; }
  # Trust on the loopback address (and the private socket directory) only:
  # this cluster lives for one test run. Every other host is refused.
  printf 'local all all trust\nhost all all 127.0.0.1/32 trust\n' >"$TEST_POSTGRES_DIR/data/pg_hba.conf"
  as_postgres_user "$bindir/pg_ctl" -D "$TEST_POSTGRES_DIR/data" -l "$TEST_POSTGRES_DIR/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $TEST_POSTGRES_DIR -c max_connections=300 -c fsync=on" start >/dev/null \
    || { cat "$TEST_POSTGRES_DIR/server.log" >&2; return 1; }
  TEST_POSTGRES_BINDIR=$bindir
  export LEDGERLINE_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
  export LEDGERLINE_TEST_PG_BINDIR="$bindir"
  export LEDGERLINE_REQUIRE_POSTGRES=1
}

# stop_test_postgres: stops the cluster started by start_test_postgres and
# deletes its directory. Safe to call when none was started.
stop_test_postgres() {
  [ -n "${TEST_POSTGRES_DIR:-}" ] || return 0
  as_postgres_user "$TEST_POSTGRES_BINDIR/pg_ctl" -D "$TEST_POSTGRES_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$TEST_POSTGRES_DIR"
  TEST_POSTGRES_DIR=""
}
