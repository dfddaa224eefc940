#!/usr/bin/env bash
# A throwaway HA PostgreSQL on loopback, everything under one folder DIR (owned by postgres):
#   etcd (one member) ─ Patroni node1 + node2 (PostgreSQL 15, one synchronous standby) ─ HAProxy to the leader.
#
#   cluster.sh up DIR          start it all; returns once node1 leads, node2 is its synchronous standby and HAProxy routes
#   cluster.sh kill DIR NODE   lose NODE as a machine loss looks: Patroni and its postmaster (with its backends), SIGKILL
#   cluster.sh start DIR NODE  start NODE's Patroni again (it rejoins as a replica, pg_rewind if needed)
#   cluster.sh list DIR        patronictl list: members, roles, timelines, lag
#   cluster.sh down DIR        stop everything started in DIR (SIGTERM, then SIGKILL after 10 s)
#
# Only processes recorded in DIR/*.pid (and the postmasters of DIR's data folders) are ever signalled.
set -euo pipefail

# loopback ports, away from the defaults (etcd 2379/2380, PostgreSQL 5432, Patroni 8008, HAProxy's usual 5000/7000)
ETCD_CLIENT=23790 ETCD_PEER=23800
declare -A PG_PORT=([node1]=25432 [node2]=25433) REST_PORT=([node1]=28008 [node2]=28009)
HAPROXY_PORT=25000 HAPROXY_STATS=25001
PG_BIN=/usr/lib/postgresql/15/bin

log() { echo "ha: $*" >&2; }
die() { log "$*"; exit 1; }
as_pg() { runuser -u postgres -- "$@"; }

# start_daemon NAME CMD...: runs CMD as postgres in a session of its own (so its group can be signalled), logs to DIR/NAME.log
start_daemon() {
  local name=$1; shift
  setsid runuser -u postgres -- "$@" >>"$DIR/$name.log" 2>&1 </dev/null &
  echo $! >"$DIR/$name.pid"
}

# alive PID: the process exists and is this DIR's (its command line names DIR: no recycled pid is ever signalled)
alive() { [[ -n ${1:-} ]] && grep -qaF -- "$DIR" "/proc/$1/cmdline" 2>/dev/null; }
pid_of() { [[ -f $DIR/$1.pid ]] && cat "$DIR/$1.pid" || true; }
postmaster_of() {
  local f=$DIR/$1/data/postmaster.pid pid
  [[ -f $f ]] || return 0
  pid=$(head -1 "$f")
  if alive "$pid"; then echo "$pid"; fi
}

# wait_for SECONDS WHAT CMD...: polls CMD every 0.2 s
wait_for() {
  local limit=$1 what=$2 deadline=$((SECONDS + $1)); shift 2
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "timed out after ${limit} s waiting for $what"
    sleep 0.2
  done
}
rest() { curl -fsS -m 1 -o /dev/null "http://127.0.0.1:${REST_PORT[$1]}/$2"; }

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

write_patroni_config() {
  local node=$1
  mkdir -p "$DIR/$node"
  cat >"$DIR/$node/patroni.yml" <<EOF
scope: bindcard-ha
name: $node
restapi:
  listen: 127.0.0.1:${REST_PORT[$node]}
  connect_address: 127.0.0.1:${REST_PORT[$node]}
etcd3:
  hosts: 127.0.0.1:$ETCD_CLIENT
bootstrap:
  dcs:
    # Failure detection is the leader key's TTL. A dead leader's key expires ttl - (0..loop_wait) s after the kill,
    # i.e. 15-20 s here; the standby's Patroni wakes on that (etcd watch) and promotes within a second, and HAProxy's
    # next check (0.5 s) routes to it: first success ~16-22 s after the kill (measured 20-21.5 s on a loaded 2-core
    # machine), under the 30 s target. The other way round, the living leader refreshes its key every loop_wait = 5 s,
    # so it may miss refreshes for 15 s (a CPU-starved Patroni, a stalled etcd fsync) before anyone else may take
    # over; retry_timeout = 7 s bounds one DCS or PostgreSQL call before a leader that cannot reach etcd demotes
    # itself, and loop_wait + 2 x retry_timeout = 19 s <= ttl (Patroni's rule), so it has demoted before its key can
    # expire: never two primaries. The defaults 30/10/10 take 20-30 s just to notice: too close to the target.
    ttl: 20
    loop_wait: 5
    retry_timeout: 7
    maximum_lag_on_failover: 1048576
    # non-strict: with the standby up every commit waits for it; with it gone, the primary goes on alone
    synchronous_mode: true
    synchronous_mode_strict: false
    postgresql:
      use_pg_rewind: true
      use_slots: true
      parameters:
        max_connections: 60
        shared_buffers: 32MB
        wal_log_hints: 'on'
        wal_keep_size: 128MB
        max_wal_senders: 5
        max_replication_slots: 5
        synchronous_commit: 'on'
  initdb:
    - encoding: UTF8
    - locale: C.UTF-8
    - data-checksums
postgresql:
  listen: 127.0.0.1:${PG_PORT[$node]}
  connect_address: 127.0.0.1:${PG_PORT[$node]}
  data_dir: $DIR/$node/data
  bin_dir: $PG_BIN
  pgpass: $DIR/$node/pgpass
  use_pg_rewind: true
  # the old primary's unacknowledged tail is worthless once another node leads: if pg_rewind cannot bring it back,
  # or its timeline cannot follow, clone it afresh rather than leave it out of the cluster
  remove_data_directory_on_rewind_failure: true
  remove_data_directory_on_diverged_timelines: true
  basebackup:
    - checkpoint: fast
  authentication:
    superuser:
      username: postgres
    replication:
      username: replicator
    rewind:
      username: postgres
  pg_hba:
    - local all all trust
    - host all all 127.0.0.1/32 trust
    - host replication all 127.0.0.1/32 trust
  parameters:
    unix_socket_directories: $DIR/$node
EOF
}

routes_to_node1_only() {
  local csv; csv=$(curl -fsS -m 1 "http://127.0.0.1:$HAPROXY_STATS/;csv")
  grep -q '^primary,node1,.*,UP,' <<<"$csv" && grep -q '^primary,node2,.*,DOWN,' <<<"$csv"
}

start_node() { start_daemon "$1" patroni "$DIR/$1/patroni.yml"; }

up() {
  for p in $ETCD_CLIENT $ETCD_PEER ${PG_PORT[@]} ${REST_PORT[@]} $HAPROXY_PORT $HAPROXY_STATS; do
    port_free "$p" || die "port $p is in use on 127.0.0.1 (another HA stage running?)"
  done
  chown postgres: "$DIR"
  as_pg mkdir -p "$DIR/etcd"
  start_daemon etcd etcd --name ha --data-dir "$DIR/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_CLIENT" --advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER" \
    --initial-cluster "ha=http://127.0.0.1:$ETCD_PEER" --initial-cluster-state new --initial-cluster-token "bindcard-ha-$$"
  wait_for 20 etcd curl -fsS -m 1 "http://127.0.0.1:$ETCD_CLIENT/health"

  for node in node1 node2; do write_patroni_config $node && chown -R postgres: "$DIR/$node"; done
  start_node node1
  wait_for 60 "node1 to lead" rest node1 primary
  start_node node2
  wait_for 60 "node2 to be node1's synchronous standby" rest node2 sync

  cat >"$DIR/haproxy.cfg" <<EOF
global
  maxconn 500
defaults
  mode tcp
  timeout connect 1s
  timeout client 30m
  timeout server 30m
  timeout check 1s
listen primary
  bind 127.0.0.1:$HAPROXY_PORT
  # only the node whose Patroni holds the leader lock (/primary 200) AND whose PostgreSQL has left recovery (role
  # master) gets connections: Patroni 3.0's /primary says 200 as soon as the lock is taken, while pg_ctl promote is
  # still running, and a connection made then is read-only (seen: SQLSTATE 25006 on the service's writes). When a
  # node is marked down its sessions are cut, so no client keeps talking to a demoted primary.
  option httpchk
  http-check send meth GET uri /primary
  http-check expect status 200
  http-check expect rstring '"role": ?"(master|primary)"'
  default-server inter 1s fastinter 500ms downinter 500ms fall 2 rise 1 on-marked-down shutdown-sessions
  server node1 127.0.0.1:${PG_PORT[node1]} check port ${REST_PORT[node1]}
  server node2 127.0.0.1:${PG_PORT[node2]} check port ${REST_PORT[node2]}
listen stats
  mode http
  bind 127.0.0.1:$HAPROXY_STATS
  stats enable
  stats uri /
EOF
  chown postgres: "$DIR/haproxy.cfg"
  start_daemon haproxy haproxy -db -f "$DIR/haproxy.cfg"
  # HAProxy starts with every server up until its checks say otherwise: wait for them to have spoken
  wait_for 20 "HAProxy to route to node1 only" routes_to_node1_only
  psql -h 127.0.0.1 -p $HAPROXY_PORT -U postgres -qc 'CREATE DATABASE bindcard' postgres
  log "up: node1 leads, node2 synchronous standby, HAProxy 127.0.0.1:$HAPROXY_PORT (stats http://127.0.0.1:$HAPROXY_STATS/)"
}

kill_node() {
  local node=$1 patroni postmaster groups=()
  patroni=$(pid_of "$node") postmaster=$(postmaster_of "$node")
  alive "$patroni" && groups+=("-$patroni")
  # Patroni starts the postmaster in a session of its own; its group holds the backends and auxiliary processes
  [[ -n $postmaster ]] && groups+=("-$(ps -o pgid= -p "$postmaster" | tr -d ' ')")
  ((${#groups[@]})) || die "$node is not running"
  kill -KILL -- "${groups[@]}"
  rm -f "$DIR/$node.pid"
}

list() { patronictl -c "$DIR/node1/patroni.yml" list 2>&1 || true; }

# stop NAME...: SIGTERM to each daemon (the child of its runuser, so runuser exits quietly after it), and a fast
# shutdown to a postmaster whose Patroni is gone; whatever still runs after 10 s is killed with its group
stop() {
  local pids=() p
  for name in "$@"; do
    p=$(pid_of "$name")
    alive "$p" && pids+=("$p") && { pkill -TERM -P "$p" || true; }
    if [[ $name == node? ]]; then
      p=$(postmaster_of "$name")
      [[ -n $p ]] && pids+=("$p") && { alive "$(pid_of "$name")" || kill -INT "$p" 2>/dev/null || true; }
    fi
  done
  local deadline=$((SECONDS + 10))
  for p in "${pids[@]}"; do
    while alive "$p" && ((SECONDS < deadline)); do sleep 0.2; done
  done
  for p in "${pids[@]}"; do
    if alive "$p"; then log "down: pid $p still alive after 10 s, SIGKILL"; kill -KILL -- "-$(ps -o pgid= -p "$p" | tr -d ' ')" 2>/dev/null || true; fi
  done
}

# Patroni needs etcd to stop cleanly: etcd goes last
down() {
  stop haproxy node1 node2
  stop etcd
  rm -f "$DIR"/*.pid
}

cmd=${1:-}; DIR=${2:-}
[[ -n $cmd && -n $DIR && -d $DIR ]] || die "usage: $0 up|kill|start|list|down DIR [NODE]"
DIR=$(cd "$DIR" && pwd)
case $cmd in
  up) up ;;
  kill) kill_node "${3:?NODE}" ;;
  start) start_node "${3:?NODE}" ;;
  list) list ;;
  down) down ;;
  *) die "unknown command $cmd" ;;
esac
