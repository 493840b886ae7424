#!/usr/bin/env bash
# test_comm_mpi.sh: test_comm's checks across 2 MPI processes (host backend over MPI).
#
# Runs `mpirun -np 2 --oversubscribe test_comm mpi` (Open MPI; allowed to run as root, as CI
# does), one CPU worker per process so that 2 shared cores suffice. Exits with test_comm's status
# (mpirun fails when either process does), or 77 when mpirun is missing.
#
#   usage: test_comm_mpi.sh PATH/TO/test_comm
set -u
TEST=${1:?usage: test_comm_mpi.sh PATH/TO/test_comm}
if ! command -v mpirun >/dev/null; then
    echo "skip: mpirun is missing"
    exit 77
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 STARPU_NCPU=1
exec mpirun -np 2 --oversubscribe --bind-to none "$TEST" mpi
