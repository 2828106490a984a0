/* sandbox_opts.h - the options every per-sandbox verb shares (-n, --state,
 * --state-dir, --help) and the ones each verb adds, parsed one way so that
 * a flag of another verb is refused by name (exit 2). */
#ifndef KARS_CLI_SANDBOX_OPTS_H
#define KARS_CLI_SANDBOX_OPTS_H

#include <stdbool.h>

#include "sandbox_ref.h"

enum {
	SBOPT_LEARNED = 1 << 0,
	SBOPT_APPROVE = 1 << 1,
	SBOPT_DENY = 1 << 2,
	SBOPT_ENFORCE = 1 << 3,
	SBOPT_OUTPUT = 1 << 4,
	SBOPT_API_KEY_FILE = 1 << 5,
	SBOPT_PUBKEY = 1 << 6,
	SBOPT_LINES = 1 << 7,
	SBOPT_FOLLOW = 1 << 8,
	SBOPT_NETWORK = 1 << 9,
};

struct sbref_cmd {
	const char *verb;     /* "egress" */
	const char *synopsis; /* what follows the verb, for usage */
	unsigned allowed;     /* SBOPT_* */
};

struct sbopts {
	const char *ns, *store, *root, *output;
	const char *approve, *deny, *api_key_file, *pubkey;
	bool learned, enforce, follow, network;
	long lines;
	char **args; /* positional arguments before "--" */
	int nargs;
	char **command; /* after "--" (NULL when there is none) */
	int ncommand;
};

/* argv[0] is the verb. 0 parsed; -1 --help was printed (exit 0); 2 bad
 * usage, printed. -o takes json or yaml; the verb narrows it. */
int sbopts_parse(const struct sbref_cmd *cmd, int argc, char **argv, struct sbopts *o);
/* Prints "kars: VERB: why" and the verb's usage; returns 2. */
int sbopts_usage_error(const struct sbref_cmd *cmd, const char *why);
/* kars_sbref_resolve with the options; prints the error. */
int sbopts_resolve(const struct sbref_cmd *cmd, const struct sbopts *o, const char *name,
		   struct kars_sbref *ref);

#endif
