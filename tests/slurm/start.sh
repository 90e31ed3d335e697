#!/usr/bin/env bash
# Start a single-node SLURM cluster on this machine for tests/test_slurm.py:
# munged, slurmctld and slurmd on localhost, two partitions (cpu, gpu) and two fake GPUs
# advertised through gres so GPU jobs schedule on a GPU-less node.
#
#   tests/slurm/start.sh        # installs Debian's slurm-wlm and munge when missing
#   tests/slurm/stop.sh         # stops exactly the daemons this script started
#
# Idempotent: daemons already started by this script are left running. State, logs and
# pidfiles live in $DFMNIST_SLURM_DIR (default /tmp/dfmnist-slurm). The client commands
# (sbatch, srun inside jobs, squeue) read /etc/slurm/slurm.conf, so this script writes it;
# it refuses to overwrite a slurm.conf that it did not write.
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
    exec sudo --preserve-env=DFMNIST_SLURM_DIR "$0" "$@"
fi

STATE=${DFMNIST_SLURM_DIR:-/tmp/dfmnist-slurm}
CONF_DIR=/etc/slurm
MARK="# written by dfmnist tests/slurm/start.sh"
NODE=localhost

alive() {  # alive NAME: the daemon NAME that this script started still runs
    [ -s "$STATE/pids/$1" ] && kill -0 "$(cat "$STATE/pids/$1")" 2>/dev/null
}

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null \
    || ! command -v sbatch >/dev/null; then
    echo "installing slurm-wlm and munge (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq slurm-wlm munge >/dev/null
fi

for f in slurm.conf gres.conf; do
    if [ -e "$CONF_DIR/$f" ] && ! head -n1 "$CONF_DIR/$f" | grep -qF "$MARK"; then
        echo "error: $CONF_DIR/$f exists and was not written by this script; not touching it" >&2
        exit 1
    fi
done

mkdir -p "$STATE"/{ctld,spool,dev,pids} "$CONF_DIR"

# Fake GPU device files (the minor number of /dev/null); without mknod, gres counts only.
gres_line="Name=gpu Count=2"
if [ -c "$STATE/dev/gpu0" ] || { mknod "$STATE/dev/gpu0" c 1 3 && mknod "$STATE/dev/gpu1" c 1 3; } \
    2>/dev/null; then
    gres_line="Name=gpu File=$STATE/dev/gpu[0-1]"
fi

cpus=$(nproc)
mem_mb=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)

cat > "$CONF_DIR/slurm.conf" <<EOF
$MARK
# A single-node test cluster on localhost: no cgroups, no systemd, no accounting database.
ClusterName=dfmnist-test
SlurmctldHost=$NODE
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$STATE/jobcomp.log
# Finished jobs stay visible to squeue/scontrol for an hour (the tests read them back).
MinJobAge=3600
ReturnToService=2
SlurmdParameters=config_overrides
SchedulerParameters=sched_interval=2
GresTypes=gpu
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb Gres=gpu:2 State=UNKNOWN
PartitionName=cpu Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$NODE MaxTime=INFINITE State=UP
EOF

cat > "$CONF_DIR/gres.conf" <<EOF
$MARK
AutoDetect=off
NodeName=$NODE $gres_line
EOF

# munged: reuse a running one (e.g. the system's), otherwise start our own.
if ! munge -n </dev/null >/dev/null 2>&1; then
    if ! alive munged; then
        [ -s /etc/munge/munge.key ] || mungekey --create --keyfile /etc/munge/munge.key
        chown munge:munge /etc/munge/munge.key && chmod 600 /etc/munge/munge.key
        install -d -o munge -g munge -m 0755 /run/munge
        install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
        setsid setpriv --reuid munge --regid munge --init-groups munged --foreground >"$STATE/munged.out" 2>&1 &
        echo $! >"$STATE/pids/munged"
    fi
    for _ in $(seq 50); do munge -n </dev/null >/dev/null 2>&1 && break; sleep 0.2; done
    munge -n </dev/null >/dev/null || { echo "munged did not start" >&2; exit 1; }
fi

if ! alive slurmctld; then
    setsid slurmctld -D -c >"$STATE/slurmctld.out" 2>&1 &
    echo $! >"$STATE/pids/slurmctld"
fi
for _ in $(seq 100); do scontrol ping >/dev/null 2>&1 && break; sleep 0.2; done
if ! alive slurmd; then
    setsid slurmd -D -N "$NODE" >"$STATE/slurmd.out" 2>&1 &
    echo $! >"$STATE/pids/slurmd"
fi

# Ready when the node is idle (or already running jobs).
for _ in $(seq 150); do
    node_state=$(sinfo -h -n "$NODE" -o %T 2>/dev/null | head -n1)
    case "$node_state" in idle|mixed|allocated) break ;; esac
    sleep 0.2
done
case "$node_state" in
    idle|mixed|allocated) ;;
    *)
        echo "the node did not come up (state: ${node_state:-none}); see $STATE/*.log" >&2
        exit 1
        ;;
esac
echo "SLURM is up on $NODE: $cpus CPUs, ${mem_mb} MB, gres $gres_line; state in $STATE"
sinfo
