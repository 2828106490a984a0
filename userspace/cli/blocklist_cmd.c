/* blocklist_cmd.c - see blocklist_cmd.h.
 *
 *   kars blocklist load FILE...   replace the list with these files' names
 *   kars blocklist check NAME     is NAME (or a name above it) blocked?
 *   kars blocklist status         entries, generation, kernel memory
 *
 * Files are sent to karsd as absolute paths and read by karsd with the
 * caller's identity, so a 1M-name list never travels through the socket.
 */
#include "blocklist_cmd.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "control_client.h"
#include "json.h"

void kars_cli_blocklist_usage(FILE *f)
{
	fprintf(f, "  blocklist load FILE...        replace the DNS blocklist (domainswild, hosts\n"
		   "                                or one name per line; bad lines are reported)\n"
		   "  blocklist check NAME          whether NAME is blocked, and by which entry\n"
		   "  blocklist status              entries, generation and kernel memory\n");
}

static int call(const char *socket_path, json_t *req, json_t **resp)
{
	struct kars_err err = {};
	int ret = kars_control_call(socket_path, req, resp, &err);

	json_decref(req);
	if (ret) {
		fprintf(stderr, "kars: blocklist: %s\n", err.msg);
		json_decref(*resp);
		*resp = NULL;
		return 1;
	}
	return 0;
}

static long long num(const json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

static int load(const char *socket_path, int argc, char **argv)
{
	json_t *files = json_array(), *resp, *e;
	size_t i;

	for (int a = 0; a < argc; a++) {
		char real[PATH_MAX];

		if (!realpath(argv[a], real)) {
			fprintf(stderr, "kars: blocklist: %s: %s\n", argv[a], strerror(errno));
			json_decref(files);
			return 1;
		}
		json_array_append_new(files, json_string(real));
	}
	if (call(socket_path, json_pack("{s:s,s:o}", "op", "blocklist_load", "files", files),
		 &resp))
		return 1;
	json_array_foreach(json_object_get(resp, "errors"), i, e)
	    fprintf(stderr, "%s\n", json_string_value(e));
	if (num(resp, "rejected") > (long long)json_array_size(json_object_get(resp, "errors")))
		fprintf(stderr, "... and %lld more rejected lines\n",
			num(resp, "rejected") -
			    (long long)json_array_size(json_object_get(resp, "errors")));
	printf("blocklist generation %lld: %lld names from %lld lines (%lld rejected), %.1f MiB "
	       "in the kernel, %.2f s\n",
	       num(resp, "generation"), num(resp, "entries"), num(resp, "lines"),
	       num(resp, "rejected"), (double)num(resp, "memoryBytes") / (1024.0 * 1024.0),
	       json_real_value(json_object_get(resp, "seconds")));
	json_decref(resp);
	return 0;
}

static int check(const char *socket_path, const char *name)
{
	json_t *resp;
	int blocked;

	if (call(socket_path, json_pack("{s:s,s:s}", "op", "blocklist_check", "name", name), &resp))
		return 1;
	blocked = json_is_true(json_object_get(resp, "blocked"));
	if (blocked)
		printf("%s: blocked (entry %s, generation %lld)\n",
		       json_string_value(json_object_get(resp, "name")),
		       json_string_value(json_object_get(resp, "matched")),
		       num(resp, "generation"));
	else
		printf("%s: not blocked (generation %lld)\n",
		       json_string_value(json_object_get(resp, "name")), num(resp, "generation"));
	json_decref(resp);
	return blocked ? 1 : 0;
}

int kars_cli_blocklist(const char *socket_path, int argc, char **argv)
{
	const char *sub = argc > 0 ? argv[0] : "";
	json_t *resp;

	if (strcmp(sub, "load") == 0 && argc >= 2)
		return load(socket_path, argc - 1, argv + 1);
	if (strcmp(sub, "check") == 0 && argc == 2)
		return check(socket_path, argv[1]);
	if (strcmp(sub, "status") == 0 && argc == 1) {
		char *s;

		if (call(socket_path, json_pack("{s:s}", "op", "blocklist_status"), &resp))
			return 1;
		json_object_del(resp, "ok");
		s = json_dumps(resp, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		printf("%s\n", s ? s : "{}");
		free(s);
		json_decref(resp);
		return 0;
	}
	fprintf(stderr, "kars: blocklist: unknown or incomplete command\nusage:\n");
	kars_cli_blocklist_usage(stderr);
	return 2;
}
