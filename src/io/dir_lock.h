// An exclusive lock on an output folder for the whole of a run (docs/reliability.md):
// two runs given the same folder would otherwise interleave their checkpoints and
// outputs. The lock is flock(2) on DIR/.antibody.lock, which the kernel drops when the
// holder exits in any way (kill -9 included), so a stale lock never blocks a later run.
#pragma once
#include "util/err.h"

typedef struct {
    int fd;      // -1 when not held
    char *path;  // DIR/.antibody.lock
} DirLock;

// Creates dir if needed and takes its lock without waiting. When another process holds
// it, fails at once with "DIR: in use by another antibody run (pid N)".
int dir_lock(DirLock *l, const char *dir, Err *e);
// Releases the lock and removes the lock file. Safe on a lock that was never taken.
void dir_unlock(DirLock *l);
