/* migrate_cmd.h - `kars migrate from-kagent|to-overlay|to-native` and
 * `kars convert` (docs/migration.md). */
#ifndef KARS_MIGRATE_CMD_H
#define KARS_MIGRATE_CMD_H

#include <stdio.h>

void kars_cli_migrate_usage(FILE *f);
int kars_cli_migrate(int argc, char **argv);
int kars_cli_convert(int argc, char **argv);

#endif
