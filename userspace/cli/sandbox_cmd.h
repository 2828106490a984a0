/* sandbox_cmd.h - the sandbox lifecycle of local mode, on top of the object
 * store and the local backend's layout (docs/local-mode.md):
 *
 *   kars add NAME [--runtime byo] --command CMD [-- ARG...] [--model M]
 *            [--token-budget-daily N] [--learn-egress] [--allow HOST[:PORT]]...
 *            [--dry-run [-o yaml|json]]
 *   kars list [-A]
 *   kars status NAME [-o json|yaml]
 *   kars logs NAME [-f] [--role agent|router]
 *   kars delete NAME [--no-wait]
 *
 * All take [-n NS] (default "default") and [--state-dir DIR] (kars up's
 * directory: $KARS_LOCAL_DIR, else /var/lib/kars; the store is DIR/state).
 * Exit status: 0 done, 1 refused or failed (the reason on stderr), 2 bad
 * usage, 3 (status) the sandbox exists but is not Running.
 */
#ifndef KARS_CLI_SANDBOX_CMD_H
#define KARS_CLI_SANDBOX_CMD_H

#include <stdbool.h>
#include <stdio.h>

/* argv[0] is the command word. */
int kars_cli_sandbox_add(int argc, char **argv);
int kars_cli_sandbox_list(int argc, char **argv);
int kars_cli_sandbox_status(int argc, char **argv);
int kars_cli_sandbox_logs(int argc, char **argv);
int kars_cli_sandbox_delete(int argc, char **argv);
/* Whether a "delete" command line is `kars delete NAME` (one name, no
 * KIND, no -f) rather than the store's `kars delete KIND NAME`. */
bool kars_cli_sandbox_is_delete(int argc, char **argv);
void kars_cli_sandbox_usage(FILE *f);

#endif
