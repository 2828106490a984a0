/* blocklist_cmd.h - `kars blocklist load|check|status`: the DNS blocklist
 * karsd enforces in the kernel (docs/dns.md). */
#ifndef KARS_CLI_BLOCKLIST_CMD_H
#define KARS_CLI_BLOCKLIST_CMD_H

#include <stdio.h>

/* argv[0] is the word after "blocklist". Returns the exit status: 0 done,
 * 1 refused or failed (or, for check, the name is blocked), 2 bad usage. */
int kars_cli_blocklist(const char *socket_path, int argc, char **argv);
void kars_cli_blocklist_usage(FILE *f);

#endif
