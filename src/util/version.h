// The version (file VERSION) and git commit this binary was built from, baked in at build
// time by the Makefile ("unknown" outside a git checkout; "-dirty" with uncommitted changes).
#pragma once
const char *antibody_version(void);
const char *antibody_commit(void);
