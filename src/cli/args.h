// Command-line flags: "--name value" and "--flag" pairs, every flag declared by the
// command so that a typo is an error rather than silently ignored.
#pragma once

typedef struct {
    const char *name;   // without "--"
    int takes_value;
    const char *value;  // parsed value (or "1" for a present flag), NULL if absent
    int repeat;         // flag may repeat: values kept in `values`
    const char *values[16];
    int n_values;
} Flag;

typedef struct {
    const char *cmd;
    Flag *flags;
    int n_flags;
    const char *pos[8];  // positional arguments
    int n_pos;
} Args;

// Returns 0, 1 when --help was asked (usage printed), or -1 with a message on stderr.
int args_parse(Args *a, int argc, char **argv, const char *usage);
const char *arg_str(const Args *a, const char *name, const char *def);
int arg_int(const Args *a, const char *name, int def);
double arg_double(const Args *a, const char *name, double def);
int arg_flag(const Args *a, const char *name);
const Flag *arg_get(const Args *a, const char *name);
// Prints "antibody CMD: msg" and returns 1 (the command's exit code).
int cli_fail(const char *cmd, const char *msg);
