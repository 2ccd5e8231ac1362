// Command-line flags: "--name value" and "--flag" pairs, every flag declared by the
// command so that a typo is an error rather than silently ignored. Names match with '-'
// and '_' alike, case-insensitively (--batch-size = --batch_size). A stage's settings
// become flags through cli/settings_flags.h, from the same tables the pipeline config reads.
#pragma once

typedef struct {
    const char *name;   // without "--"
    int takes_value;
    const char *value;  // parsed value (or "1" for a present flag), NULL if absent
    int repeat;         // flag may repeat: values kept in `values`
    const char *values[16];
    int n_values;
} Flag;

#define MAX_FLAGS 128

typedef struct {
    const char *cmd;
    Flag flags[MAX_FLAGS];
    int n_flags;
    const char *pos[8];  // positional arguments
    int n_pos;
    const char *help_tail;  // printed after the usage on --help (the settings' flags), or NULL
} Args;

// Adds the flags of a command (a {NULL} terminated list).
void args_add(Args *a, const Flag *flags);
// Returns 0, 1 when --help was asked (usage printed), or -1 with a message on stderr.
int args_parse(Args *a, int argc, char **argv, const char *usage);
const char *arg_str(const Args *a, const char *name, const char *def);
int arg_int(const Args *a, const char *name, int def);
double arg_double(const Args *a, const char *name, double def);
int arg_flag(const Args *a, const char *name);
const Flag *arg_get(const Args *a, const char *name);
// Prints "antibody CMD: msg" and returns 1 (the command's exit code).
int cli_fail(const char *cmd, const char *msg);
