# Helpers for lab tests that drive the whole daemon in the guest (bash, sourced after
# smoke/lib.sh). The sourcing script sets:
#   sriovd, cli_bin   the binaries      state   the daemon's --state-dir
#   log               its log file      sock    its unix socket (default /run/sriovd.sock)
# shellcheck shell=bash
sock=${sock:-/run/sriovd.sock}

cli() { "$cli_bin" --socket "$sock" "$@"; }
# run_cli DESC EXPECTED_RC ARGS...: runs sriovd-cli, checks its exit status; output in $cli_out.
cli_out=""
run_cli() {
  local desc=$1 want=$2 rc=0; shift 2
  cli_out=$(cli "$@" 2>&1) || rc=$?
  if [ "$rc" = "$want" ]; then pass "$desc: sriovd-cli $* -> exit $rc"
  else fail "$desc: sriovd-cli $* -> exit $rc (expected $want): $cli_out"; fi
}
# jdev ADDRESS JQ: a field of `sriovd-cli --json device ADDRESS`.
jdev() { cli --json device "$1" | jq -r "$2"; }
uptime_cs() { local t; read -r t _ < /proc/uptime; echo $(( 10#${t/./} )); }
# until_true SECONDS 'COMMAND': evaluates COMMAND (one string, in single quotes, so that the
# command substitutions in it run again each time) until it succeeds or SECONDS have passed: a
# state the daemon reaches through an event it follows, read back over REST.
until_true() {
  local end=$(( $(uptime_cs) + $1 * 100 )); shift
  until eval "$1"; do [ "$(uptime_cs)" -lt $end ] || return 1; done
}
vf_addr() { basename "$(readlink -f "/sys/bus/pci/devices/$1/virtfn$2")"; }
t_mark() { read -r _t_mark _ < /proc/uptime; }
t_since_mark() { local now; read -r now _ < /proc/uptime; awk_free_sub "$now" "$_t_mark"; }
# http_status METHOD PATH [BODY]: the HTTP status of one request on the socket (curl), for the
# checks that need the status code itself; sriovd-cli prints only the problem's detail.
http_status() {
  curl -s -o /dev/null -w '%{http_code}' --unix-socket "$sock" -X "$1" -H 'Content-Type: application/json' \
    ${3:+--data "$3"} "http://sriovd$2"
}

daemon_pid=""
# start_daemon [EXTRA FLAGS...]: `sriovd serve` in the background, ready within 30 s.
start_daemon() {
  mkdir -p "$state"
  t_mark
  "$sriovd" serve --listen "unix:$sock" --state-dir "$state" "$@" >"$log" 2>&1 &
  daemon_pid=$!
  if cli --wait 30 host >/dev/null 2>&1; then
    pass "daemon ready in $(t_since_mark)s (pid $daemon_pid)"
  else
    fail "daemon not ready within 30 s; log:"; sed 's/^/    /' "$log"; lab_done; exit 1
  fi
}
stop_daemon() {
  local rc=0
  t_mark
  kill -TERM "$daemon_pid"; wait "$daemon_pid" || rc=$?
  expect "daemon exits 0 on SIGTERM ($(t_since_mark)s)" 0 "$rc"
}
show_log() { echo "--- sriovd log:"; sed 's/^/    /' "$log"; }
