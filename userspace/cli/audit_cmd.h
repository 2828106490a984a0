/* audit_cmd.h - `kars audit ...`: offline checks of an audit chain file.
 *
 * Kept apart from kars.c because it needs no daemon: an auditor runs it on a
 * copy of a log (docs/audit-chain.md), with only the log and a public key.
 */
#ifndef KARS_CLI_AUDIT_CMD_H
#define KARS_CLI_AUDIT_CMD_H

#include <stdio.h>

/* argv[0] is the word after "audit". Returns the exit status: 0 valid,
 * 1 invalid or unreadable (the first bad record on stderr), 2 bad usage. */
int kars_cli_audit(int argc, char **argv);
void kars_cli_audit_usage(FILE *f);
/* verify on one file; keyfile NULL: the key the log carries. */
int kars_cli_audit_verify_file(const char *file, const char *keyfile);

#endif
