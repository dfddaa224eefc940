# Sourced by CI scripts. listening_url LOG PID NAME: waits (up to 60 s) for the "listening on http://127.0.0.1:PORT"
# line a service started in the background writes to LOG, and prints its base URL; if PID exits first, or no such
# line comes, it prints the log and fails, naming NAME.
listening_url() {
  local log=$1 pid=$2 name=$3 base
  for _ in $(seq 1 120); do
    base=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$log" | head -1 | sed 's/listening on //') || true
    if [ -n "$base" ]; then echo "$base"; return 0; fi
    kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; echo "$name: the service exited" >&2; return 1; }
    sleep 0.5
  done
  cat "$log" >&2
  echo "$name: no listening line" >&2
  return 1
}
