# Sourced by the benchmark scripts: starts a throwaway PostgreSQL server from Debian's packages (fsync and
# synchronous_commit on, its defaults, as a real server runs) on a free loopback port, sets PG_URL to its
# `postgres` database, and stops it and removes its folder when the script exits.

pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
pg_folder=$(mktemp -d)
pg_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# PostgreSQL refuses to run as root: as root, its folder and server belong to the postgres user.
pg_as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    chown -R postgres:postgres "$pg_folder"
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}
pg_as_owner "$pg_bin/initdb" -D "$pg_folder/data" -U postgres --auth=trust -E UTF8 >"$pg_folder/initdb.log"
pg_as_owner "$pg_bin/pg_ctl" -D "$pg_folder/data" -l "$pg_folder/server.log" -w \
  -o "-p $pg_port -h 127.0.0.1 -k $pg_folder" start >/dev/null
pg_stop() {
  pg_as_owner "$pg_bin/pg_ctl" -D "$pg_folder/data" -m fast stop >/dev/null
  rm -rf "$pg_folder"
}
PG_URL="host=127.0.0.1 port=$pg_port user=postgres dbname=postgres"
