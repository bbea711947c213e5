#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for CI and for trying sweeps by hand.
#
#   ci/slurm-local.sh start [STATE_DIR]   start munged, slurmctld and slurmd; prints the SLURM_CONF to export
#   ci/slurm-local.sh stop  [STATE_DIR]   cancel jobs, stop the daemons by PID
#
# Needs Debian's slurmctld, slurmd, slurm-client and munge (apt-get install -y --no-install-recommends
# slurmctld slurmd slurm-client munge). No systemd and no cgroups are needed: the daemons run as the
# current user with their own sockets, keys, spool and logs under STATE_DIR (default /tmp/idcrisis-slurm).
set -euo pipefail
cmd=${1:?usage: slurm-local.sh start|stop [STATE_DIR]}
state=${2:-/tmp/idcrisis-slurm}
conf="$state/slurm.conf"

stop_pid() { # pidfile name
  local f=$1
  if [ -f "$f" ]; then
    local pid; pid=$(cat "$f")
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$f"
  fi
}

case "$cmd" in
start)
  mkdir -p "$state"/{munge,ctld,spool,log}
  # munged insists that every directory above its socket is world-executable.
  chmod 755 "$state" "$state"/munge
  d=$state; while [ "$d" != / ]; do d=$(dirname "$d"); [ -x "$d" ] || chmod o+x "$d"; done
  [ -f "$state/munge/munge.key" ] || { dd if=/dev/urandom of="$state/munge/munge.key" bs=1024 count=1 status=none; chmod 400 "$state/munge/munge.key"; }
  sock="$state/munge/munge.socket.2"
  munged --force --socket="$sock" --key-file="$state/munge/munge.key" --pid-file="$state/munge/munged.pid" \
         --log-file="$state/log/munged.log" --seed-file="$state/munge/munged.seed"
  cpus=$(nproc)
  mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
  cat > "$conf" <<CONF
ClusterName=idcrisis
SlurmctldHost=localhost
SlurmctldPort=16817
SlurmdPort=16818
AuthType=auth/munge
AuthInfo=socket=$sock
CredType=cred/munge
SlurmUser=$(id -un)
SlurmdUser=$(id -un)
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/spool
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerParameters=batch_sched_delay=0
ReturnToService=2
NodeName=localhost CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
  export SLURM_CONF="$conf"
  slurmctld -f "$conf"
  slurmd -N localhost -f "$conf"
  for _ in $(seq 100); do
    if sinfo -h -o %T 2>/dev/null | grep -qE '^idle'; then
      echo "export SLURM_CONF=$conf"
      exit 0
    fi
    sleep 0.2
  done
  echo "slurm did not come up; logs in $state/log" >&2
  tail -n 20 "$state"/log/*.log >&2 || true
  exit 1
  ;;
stop)
  export SLURM_CONF="$conf"
  # Running jobs survive a stopped slurmd: cancel them first.
  if [ -f "$conf" ]; then scancel --user="$(id -un)" 2>/dev/null || true; sleep 0.5; fi
  stop_pid "$state/slurmd.pid"
  stop_pid "$state/slurmctld.pid"
  stop_pid "$state/munge/munged.pid"
  ;;
*)
  echo "usage: slurm-local.sh start|stop [STATE_DIR]" >&2; exit 2 ;;
esac
