/* sandbox_ops_cmd.h - the per-sandbox verbs of local mode:
 *
 *   kars egress NAME --learned | --approve HOST[:PORT] | --deny HOST[:PORT] | --enforce
 *   kars model set NAME MODEL
 *   kars credentials update NAME --api-key-file FILE
 *   kars trace NAME --network [-o json]         (sandbox_trace.c)
 *   kars audit verify|tail NAME                 (the router's audit chain)
 *   kars connect NAME [-- COMMAND...]           (sandbox_connect.c)
 *
 * Durable changes (egress, model) are edits of the sandbox's objects in the
 * store: the controller stays the only writer of the router's and karsd's
 * configuration, and the change survives restarts. The credential goes
 * straight into the router's directory, which only the router UID reads.
 * Files: sandbox_egress.c, sandbox_audit.c, sandbox_trace.c,
 * sandbox_connect.c, with sandbox_opts.c (options), sandbox_ref.c (naming,
 * the run file), sandbox_store.c (store edits), key_install.c.
 * Exit status: 0 done, 1 refused or failed (the reason on stderr), 2 bad
 * usage.
 */
#ifndef KARS_CLI_SANDBOX_OPS_CMD_H
#define KARS_CLI_SANDBOX_OPS_CMD_H

#include <stdio.h>

void kars_cli_sandbox_ops_usage(FILE *f);

/* argv[0] is the verb ("egress", "model", ...). */
int kars_cli_egress(const char *socket_path, int argc, char **argv);
int kars_cli_model(int argc, char **argv);
int kars_cli_credentials(int argc, char **argv);
int kars_cli_trace_sandbox(const char *socket_path, int argc, char **argv);
int kars_cli_audit_sandbox(int argc, char **argv);
int kars_cli_connect(int argc, char **argv);

#endif
