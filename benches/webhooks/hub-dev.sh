# Sourced by run.sh and lag.sh: the `hub` binary, a work directory removed on exit, and
# `hub dev` started on a free loopback port.
#
#   hub_binary                 sets $hub: HUB_BENCH_BIN, or a release build without fat LTO
#                              (16 codegen units: minutes, not ten; opt-level 3 all the same)
#   make_work NAME             sets $work (under HUB_BENCH_DATA_PARENT, default the temp dir)
#                              and $data, and points every `hub` command at $data
#   start_hub_dev [ENV=V ...]  starts an idle `hub dev --port 0 --no-demo` (RUST_LOG default
#                              info; extra environment as given), sets $hub_pid and $address

hub_binary() {
  if [ -n "${HUB_BENCH_BIN:-}" ]; then
    hub="$HUB_BENCH_BIN"
  else
    export CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16
    cargo build --release -p hub --quiet
    hub="${CARGO_TARGET_DIR:-$root/target}/release/hub"
  fi
}

hub_pid=""
cleanup() {
  if [ -n "$hub_pid" ]; then kill -INT "$hub_pid" 2> /dev/null || true; wait "$hub_pid" 2> /dev/null || true; fi
  rm -rf "$work"
}

make_work() {
  work="$(mktemp -d "${HUB_BENCH_DATA_PARENT:-${TMPDIR:-/tmp}}/$1.XXXXXX")"
  trap cleanup EXIT
  data="$work/data"
  export HUB_BACKEND=embedded HUB_DATA_DIR="$data"
  unset AWS_ENDPOINT_URL
}

start_hub_dev() {
  env RUST_LOG="${RUST_LOG:-info}" "$@" "$hub" dev --port 0 --tick 3600 --no-demo > "$work/hub.out" 2> "$work/hub.log" &
  hub_pid=$!
  address=""
  for _ in $(seq 100); do
    address="$(sed -n 's|.*listening on http://\([^ ]*\).*|\1|p' "$work/hub.out" | head -n 1)"
    [ -n "$address" ] && break
    sleep 0.1
  done
  [ -n "$address" ] || { echo "hub dev did not start:"; cat "$work/hub.log"; exit 1; }
}
