#include "util/version.h"

#include "gen/version.h"  // written by the Makefile into BUILD/gen

const char *antibody_version(void) { return ANTIBODY_VERSION; }
const char *antibody_commit(void) { return ANTIBODY_COMMIT; }
