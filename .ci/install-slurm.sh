#!/bin/sh
# Install what the Slurm tests (pytest -m slurm) need: Debian's slurm-wlm (slurmctld, slurmd,
# the client commands) and munge, when absent. Nothing is configured or started here: the
# tests write their own one-node slurm.conf and munge key in a temporary folder and start
# and stop the daemons themselves (tests/cluster/slurm.py). Needs root (CI containers run as
# root); the packages' own services are not started (no systemd in the container).
set -eu
if command -v slurmd >/dev/null 2>&1 && command -v slurmctld >/dev/null 2>&1 && command -v munged >/dev/null 2>&1; then
    echo "slurm already installed: $(slurmd -V 2>/dev/null || echo slurmd)"
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends slurmctld slurmd slurm-client munge
slurmd -V
