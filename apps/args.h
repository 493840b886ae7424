/* args.h: gpt50b's command line, Megatron-LM's flag names, parsed into the flags of a run's
 * settings (graph/model/settings.h, which resolves them with the preset and the DeepSpeed
 * config). */
#ifndef GPT50B_ARGS_H
#define GPT50B_ARGS_H

#include "settings.h"

/* --deepspeed_config FILE (or --deepspeed-config, or =FILE) and --strict-config, read before the
 * other flags so that those override the file. Leaves *path and *strict as they are when absent. */
void args_prescan_config(int argc, char **argv, const char **path, int *strict);

/* Parses every flag into f (settings_flags_init'ed), in order. --help prints the usage and exits
 * 0; an unknown flag, a missing or bad value ends the run with one line and exit code 2. */
void args_parse(struct settings_flags *f, int argc, char **argv);

#endif
