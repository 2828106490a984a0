/* up_cmd.h - kars up --local / kars down: karsd and kars-controller as
 * supervised background services of one host, under one state directory.
 *
 *   <state>/state            the object store (kars apply, kars add)
 *   <state>/policies         where the controller delivers compiled policies
 *   <state>/sandboxes, uids  the local sandboxes (docs/local-mode.md)
 *   <state>/run              up.pid, karsd.pid, kars-controller.pid, up.json
 *   <state>/logs             up.log, karsd.log, kars-controller.log
 */
#ifndef KARS_CLI_UP_CMD_H
#define KARS_CLI_UP_CMD_H

#include <stdio.h>

#define KARS_LOCAL_STATE_DIR "/var/lib/kars"

/* argv[0] is the command word. Exit status: 0 done, 1 failed, 2 usage. */
int kars_cli_up(const char *socket_path, int argc, char **argv);
int kars_cli_down(int argc, char **argv);
void kars_cli_up_usage(FILE *f);

#endif
