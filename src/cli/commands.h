// Every subcommand: int cmd_NAME(int argc, char **argv), argv[0] = the command name.
#pragma once
int cmd_align(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_antidote(int argc, char **argv);
int cmd_finetune(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_pipeline(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);

#include "pipeline/config.h"
// Runs a pipeline config for command cmd (the threads it asks for and the interrupt handler
// set here): 0, or the exit code with the error printed.
int cmd_pipeline_run(PipelineConfig *c, const char *cmd);
