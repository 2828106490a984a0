/* store_cmd.h - kars apply / get / delete against the local object store
 * (userspace/lib/store.h), with kubectl's output:
 *
 *   kars apply -f FILE|-                      create or update each object
 *   kars get KIND [NAME] [-n NS|-A] [-o yaml|json|wide] [-w [--resource-version RV]]
 *   kars delete KIND NAME [-n NS]  |  kars delete -f FILE|-
 *
 * The store is the directory --state DIR, else $KARS_STATE_DIR, else
 * /var/lib/kars/state.
 */
#ifndef KARS_CLI_STORE_CMD_H
#define KARS_CLI_STORE_CMD_H

#include <stdio.h>

/* argv[0] is the command word. Exit status: 0 done, 1 failed, 2 usage. */
int kars_cli_apply(int argc, char **argv);
int kars_cli_get(int argc, char **argv);
int kars_cli_delete(int argc, char **argv);
void kars_cli_store_usage(FILE *f);

#endif
