/* schema_cmd.h - the kars commands that need only the schema, no daemon:
 *
 *   kars crds [--out DIR]           the CRD YAML (deploy/crds/ is its output)
 *   kars validate -f FILE|-         check manifests as the API server would
 *   kars explain KIND[.field...] [--recursive]
 */
#ifndef KARS_CLI_SCHEMA_CMD_H
#define KARS_CLI_SCHEMA_CMD_H

#include <stdio.h>

/* argv[0] is the command word. Exit status: 0 ok, 1 invalid/failed, 2 usage. */
int kars_cli_crds(int argc, char **argv);
int kars_cli_validate(int argc, char **argv);
int kars_cli_explain(int argc, char **argv);
void kars_cli_schema_usage(FILE *f);

#endif
