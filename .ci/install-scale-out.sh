#!/bin/sh
# Installs the servers the executor contract tests start (Redis; Slurm with munge) when missing.
# Idempotent and quiet; prints one line when it cannot (the tests then skip, saying why).
set -u
missing=""
command -v redis-server >/dev/null 2>&1 || missing="$missing redis-server"
command -v slurmctld >/dev/null 2>&1 || [ -x /usr/sbin/slurmctld ] || missing="$missing slurmctld"
command -v slurmd >/dev/null 2>&1 || [ -x /usr/sbin/slurmd ] || missing="$missing slurmd"
command -v munged >/dev/null 2>&1 || [ -x /usr/sbin/munged ] || missing="$missing munge"
[ -z "$missing" ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-scale-out: cannot install$missing (no apt-get); their executor tests will be skipped" >&2
  exit 0
fi
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo -n"
export DEBIAN_FRONTEND=noninteractive
if ! { $sudo apt-get update -qq >/dev/null 2>&1 && $sudo apt-get install -y -qq --no-install-recommends$missing >/dev/null 2>&1; }; then
  echo "install-scale-out: apt-get could not install$missing; their executor tests will be skipped" >&2
fi
exit 0
