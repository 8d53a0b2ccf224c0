#!/usr/bin/env bash
# Starts a one-node SLURM cluster on this machine without systemd, for the sharding tests and for
# trying `dda slurm` on a laptop: munged (as the munge user), a generated single-node slurm.conf,
# slurmctld and slurmd. Needs Debian's slurm-wlm and munge (apt-get install -y
# --no-install-recommends slurm-wlm munge) and root. Idempotent: a running cluster is left alone.
# Usage: sudo bash scripts/start-slurm.sh        (then: sinfo; squeue)
set -euo pipefail
if [[ $(id -u) -ne 0 ]]; then echo "start-slurm.sh: run as root (sudo)" >&2; exit 1; fi
for b in munged slurmctld slurmd sinfo; do
  command -v "$b" >/dev/null || { echo "start-slurm.sh: $b not found; apt-get install -y --no-install-recommends slurm-wlm munge" >&2; exit 1; }
done
if sinfo -h -o %T 2>/dev/null | grep -qE 'idle|mixed|alloc'; then echo "SLURM already running: $(sinfo -h -o '%N %T %c CPUs')"; exit 0; fi

# munge: a key, its folders, and the daemon as the munge user.
mkdir -p /etc/munge /var/lib/munge /var/log/munge /run/munge
[[ -s /etc/munge/munge.key ]] || dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
chown -R munge:munge /etc/munge /var/lib/munge /var/log/munge /run/munge
chmod 0700 /etc/munge /var/lib/munge /var/log/munge
chmod 0755 /run/munge
chmod 0400 /etc/munge/munge.key
pgrep -x munged >/dev/null || runuser -u munge -- munged

# slurm.conf for this one node: its real CPU count and memory; no accounting, no cgroups.
host=$(hostname -s)
cpus=$(nproc)
mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 512 ))
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
chown slurm:slurm /var/spool/slurmctld /var/log/slurm
cat > /etc/slurm/slurm.conf <<EOF
ClusterName=dda-local
SlurmctldHost=${host}
SlurmUser=slurm
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
DefMemPerCPU=1024
ReturnToService=2
MaxArraySize=10001
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
NodeName=${host} CPUs=${cpus} RealMemory=${mem} State=UNKNOWN
PartitionName=debug Nodes=${host} Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
EOF
pgrep -x slurmctld >/dev/null || slurmctld
pgrep -x slurmd >/dev/null || slurmd
for _ in $(seq 1 50); do
  if sinfo -h -o %T 2>/dev/null | grep -qE 'idle|mixed|alloc'; then echo "SLURM running: $(sinfo -h -o '%N %T %c CPUs %m MB')"; exit 0; fi
  sleep 0.2
done
echo "start-slurm.sh: the node did not come up; see /var/log/slurm/slurmctld.log and slurmd.log" >&2
sinfo >&2 || true
exit 1
