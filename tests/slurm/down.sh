#!/usr/bin/env bash
# Stop the daemons that tests/slurm/up.sh started (and only those), by their recorded pids.
# A daemon whose pid now belongs to another program is left alone. `--purge` also removes
# the state directory.
set -uo pipefail

STATE=${NTKVAE_SLURM_DIR:-/tmp/ntkvae-slurm}
STARTED=$STATE/started-by-up
[[ -f $STARTED ]] || exit 0

# Stop in reverse start order: slurmd, slurmctld, then munged.
tac "$STARTED" | while read -r name pid; do
    if [[ $name == symlink ]]; then   # pid is the path of a symlink up.sh made
        [[ -L $pid ]] && rm -f "$pid"
        continue
    fi
    [[ -n ${pid:-} && -r /proc/$pid/comm && $(cat "/proc/$pid/comm") == "$name" ]] || continue
    # A zombie (state Z) has already exited; its parent reaps it.
    [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) == Z ]] && continue
    kill "$pid" 2>/dev/null
    alive() { [[ -d /proc/$pid && $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]]; }
    for _ in $(seq 150); do alive || break; sleep 0.1; done
    if alive; then
        echo "down.sh: $name ($pid) did not stop in 15 s; killing it" >&2
        kill -9 "$pid" 2>/dev/null
    fi
done
: > "$STARTED"
if [[ ${1:-} == --purge ]]; then
    rm -rf "$STATE"
fi
exit 0
