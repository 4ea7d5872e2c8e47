#!/usr/bin/env bash
# Bring up a real single-node SLURM cluster on this machine for the workflow tests (and CI).
#
#   tests/slurm/up.sh            # prints `export SLURM_CONF=...` on its last line
#   tests/slurm/down.sh          # stops only the daemons this script started
#
# Debian's packages (slurmctld, slurmd, slurm-client, munge) are installed when missing
# (needs root and apt). Everything else stays in a state directory: slurm.conf, gres.conf,
# spool, logs, pid files and the job-completion log (jobcomp.log, one line per finished job,
# which the tests read to see which jobs went through sbatch). Nothing is written to
# /etc/slurm but a symlink to that slurm.conf (jobs need it at the standard path). Non-default ports keep it apart
# from any other SLURM on the machine.
#
# No accounting database: the executor plugin must poll with `--slurm-status-command squeue`
# (its default, sacct, needs slurmdbd and otherwise waits for ever). MinJobAge=300 keeps
# finished jobs visible to squeue long enough for that.
#
# GPUs are declared as GRES backed by character devices (mknod c 1 3, i.e. /dev/null), so
# jobs request GPUs exactly as on a real cluster (--gpus=1), SLURM schedules them one per
# fake card and sets CUDA_VISIBLE_DEVICES, but nothing runs on a GPU.
#
# Knobs (environment): NTKVAE_SLURM_DIR (state, default /tmp/ntkvae-slurm),
# NTKVAE_SLURM_GPUS (fake GPUs, default 1), NTKVAE_SLURM_PORT (slurmctld port, default 16817;
# slurmd uses the next one).
# Exit status: 0 up; 3 SLURM is missing and cannot be installed here (not root, no apt, apt
# failed: the tests skip with the message); 2 the cluster did not come up (the tests fail).
set -euo pipefail

STATE=${NTKVAE_SLURM_DIR:-/tmp/ntkvae-slurm}
GPUS=${NTKVAE_SLURM_GPUS:-1}
PORT=${NTKVAE_SLURM_PORT:-16817}
HOST=$(hostname -s)
CONF=$STATE/slurm.conf
STARTED=$STATE/started-by-up   # "name pid" per daemon this script started

die() { echo "up.sh: $*" >&2; exit "${2:-1}"; }

# A daemon counts as running only if its pid file names a live process of that name.
running_pid() {  # name pidfile
    local pid
    [[ -s $2 ]] || return 1
    pid=$(tr -d '[:space:]' < "$2")
    [[ -r /proc/$pid/comm && $(cat "/proc/$pid/comm") == "$1" ]] || return 1
    echo "$pid"
}

# Wait for a daemon that forked into the background to write its pid file, then record it.
# A daemon that dies during start-up (a fatal config error) fails here with its log's tail.
wait_for() {  # name pidfile logfile
    local pid
    for _ in $(seq 100); do
        if pid=$(running_pid "$1" "$2"); then
            sleep 0.3   # fatal config errors come right after the fork
            if [[ -d /proc/$pid ]]; then echo "$1 $pid" >> "$STARTED"; return 0; fi
        fi
        sleep 0.1
    done
    tail -n 5 "$3" >&2 || true
    die "$1 did not start (see $3)" 2
}

# 1. Packages.
missing=()
for bin in slurmctld slurmd sbatch munged; do
    command -v "$bin" >/dev/null || missing+=("$bin")
done
if (( ${#missing[@]} )); then
    [[ $(id -u) == 0 ]] || die "missing ${missing[*]} and not root: cannot apt-get install slurm" 3
    command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get" 3
    export DEBIAN_FRONTEND=noninteractive
    { apt-get install -y --no-install-recommends slurmctld slurmd slurm-client munge \
        || { apt-get update && apt-get install -y --no-install-recommends slurmctld slurmd slurm-client munge; }
    } > "${TMPDIR:-/tmp}/ntkvae-slurm-apt.log" 2>&1 \
        || die "apt-get install of slurm failed (see ${TMPDIR:-/tmp}/ntkvae-slurm-apt.log)" 3
fi
[[ $(id -u) == 0 ]] || die "the test cluster runs its daemons as root; run as root" 3

mkdir -p "$STATE"/{spool,state,log,dev}
touch "$STARTED"

# 2. munge: the machine's own munged on its default socket (started here if not running).
if [[ ! -s /etc/munge/munge.key ]]; then
    mungekey --create >/dev/null 2>&1 || /usr/sbin/create-munge-key -f >/dev/null 2>&1 \
        || die "cannot create /etc/munge/munge.key" 2
    chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key
fi
if ! running_pid munged /run/munge/munged.pid >/dev/null; then
    install -d -o munge -g munge -m 755 /run/munge /var/log/munge /var/lib/munge
    runuser -u munge -- /usr/sbin/munged || die "munged did not start (see /var/log/munge/munged.log)" 2
    wait_for munged /run/munge/munged.pid /var/log/munge/munged.log
fi

# 3. Configuration.
read -r cpus mem < <(slurmd -C | awk '/^NodeName/ {for (i=1;i<=NF;i++) {split($i,kv,"="); v[kv[1]]=kv[2]}; print v["CPUs"], v["RealMemory"]}')
mem=$(( mem > 2048 ? mem - 1024 : mem ))   # RealMemory above what slurmd sees makes the node INVAL
gres_node=""
if (( GPUS > 0 )); then
    : > "$STATE/gres.conf"
    for i in $(seq 0 $((GPUS - 1))); do
        [[ -c $STATE/dev/fakegpu$i ]] || mknod "$STATE/dev/fakegpu$i" c 1 3
        echo "Name=gpu File=$STATE/dev/fakegpu$i" >> "$STATE/gres.conf"
    done
    gres_node="Gres=gpu:$GPUS"
fi
new_conf=$(cat <<CONF
# Written by tests/slurm/up.sh: a single-node test cluster (not for production use).
ClusterName=ntkvae-test
SlurmctldHost=$HOST
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
AuthType=auth/munge
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$STATE/state
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
MinJobAge=300
ReturnToService=2
MpiDefault=none
KillWait=10
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$STATE/jobcomp.log
${GPUS:+GresTypes=gpu}
NodeName=$HOST CPUs=$cpus Boards=1 SocketsPerBoard=1 CoresPerSocket=$cpus ThreadsPerCore=1 RealMemory=$mem $gres_node State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
)
(( GPUS > 0 )) || new_conf=$(grep -v '^GresTypes' <<< "$new_conf")
# Clients inside a job (the executor's srun) do not see SLURM_CONF: the jobstep plugin
# clears SLURM_* variables. So the standard path must lead to this cluster too: a symlink,
# made only where no other SLURM configuration lives, and removed by down.sh.
if [[ -L /etc/slurm/slurm.conf && $(readlink /etc/slurm/slurm.conf) == "$CONF" ]]; then
    :
elif [[ -e /etc/slurm/slurm.conf || -L /etc/slurm/slurm.conf ]]; then
    die "/etc/slurm/slurm.conf belongs to another SLURM setup; not touching it" 2
else
    mkdir -p /etc/slurm
    ln -s "$CONF" /etc/slurm/slurm.conf
    echo "symlink /etc/slurm/slurm.conf" >> "$STARTED"
fi
changed=0
if [[ ! -f $CONF || "$(cat "$CONF")" != "$new_conf" ]]; then
    echo "$new_conf" > "$CONF"
    changed=1
fi
export SLURM_CONF=$CONF

# 4. Daemons (restarted when the configuration changed).
stop_daemon() {  # name pidfile
    local pid
    pid=$(running_pid "$1" "$2") || return 0
    kill "$pid"
    for _ in $(seq 100); do [[ -d /proc/$pid ]] || return 0; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
}
if (( changed )); then
    stop_daemon slurmd "$STATE/slurmd.pid"
    stop_daemon slurmctld "$STATE/slurmctld.pid"
fi
if ! running_pid slurmctld "$STATE/slurmctld.pid" >/dev/null; then
    slurmctld -f "$CONF" -c -i || die "slurmctld did not start (see $STATE/log/slurmctld.log)" 2
    wait_for slurmctld "$STATE/slurmctld.pid" "$STATE/log/slurmctld.log"
fi
if ! running_pid slurmd "$STATE/slurmd.pid" >/dev/null; then
    slurmd -f "$CONF" || die "slurmd did not start (see $STATE/log/slurmd.log)" 2
    wait_for slurmd "$STATE/slurmd.pid" "$STATE/log/slurmd.log"
fi

# 5. Wait for the node to be idle (resume it if a previous run left it down or drained).
state=""
deadline=$((SECONDS + 60))
while (( SECONDS < deadline )); do
    state=$(timeout 10 sinfo -h -N -o %T 2>/dev/null | head -1 || true)
    case $state in
        idle|mixed|allocated) break ;;
        down*|drain*|inval*) scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 || true ;;
    esac
    sleep 0.1
done
[[ $state == idle || $state == mixed || $state == allocated ]] \
    || die "node $HOST is '$state' (see $STATE/log/slurmd.log and slurmctld.log)" 2

# 6. Smoke test, then tell the caller how to reach the cluster.
timeout 60 srun -N1 -n1 -t 1 true || die "srun smoke test failed (see $STATE/log/)" 2
echo "export SLURM_CONF=$CONF"
