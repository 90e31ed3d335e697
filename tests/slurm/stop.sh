#!/usr/bin/env bash
# Stop the test cluster started by tests/slurm/start.sh: cancel its jobs, stop exactly the
# daemons whose pids start.sh recorded, and remove the config files start.sh wrote.
# Idempotent: nothing to stop is not an error. Logs stay in $DFMNIST_SLURM_DIR.
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
    exec sudo --preserve-env=DFMNIST_SLURM_DIR "$0" "$@"
fi

STATE=${DFMNIST_SLURM_DIR:-/tmp/dfmnist-slurm}
CONF_DIR=/etc/slurm
MARK="# written by dfmnist tests/slurm/start.sh"

ours() {  # ours FILE: FILE was written by start.sh
    [ -e "$1" ] && head -n1 "$1" | grep -qF "$MARK"
}

stop_pid() {  # stop_pid NAME: TERM, then KILL after 10 s, the daemon start.sh recorded
    local pidfile="$STATE/pids/$1" pid
    [ -s "$pidfile" ] || return 0
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
        echo "stopped $1 ($pid)"
    fi
    rm -f "$pidfile"
}

# Jobs still running would outlive slurmd (slurmstepd runs them): cancel them first. This is
# our private cluster, so every job on it is a test job.
if ours "$CONF_DIR/slurm.conf" && [ -s "$STATE/pids/slurmctld" ] \
    && kill -0 "$(cat "$STATE/pids/slurmctld")" 2>/dev/null; then
    squeue -h -t PENDING,RUNNING -o %i 2>/dev/null | xargs -r scancel || true
    for _ in $(seq 50); do
        [ -z "$(squeue -h -t RUNNING,COMPLETING 2>/dev/null)" ] && break
        sleep 0.2
    done
fi

stop_pid slurmd
stop_pid slurmctld
stop_pid munged

for f in slurm.conf gres.conf; do
    if ours "$CONF_DIR/$f"; then rm -f "$CONF_DIR/$f"; fi
done
echo "SLURM test cluster stopped (logs in $STATE)"
