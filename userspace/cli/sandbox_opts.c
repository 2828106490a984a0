/* sandbox_opts.c - option parsing of the per-sandbox verbs (sandbox_opts.h). */
#include "sandbox_opts.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
	struct option opt;
	unsigned bit; /* 0: every verb */
} table[] = {
    {{"namespace", required_argument, NULL, 'n'}, 0},
    {{"state", required_argument, NULL, 'S'}, 0},
    {{"state-dir", required_argument, NULL, 'R'}, 0},
    {{"help", no_argument, NULL, 'h'}, 0},
    {{"output", required_argument, NULL, 'o'}, SBOPT_OUTPUT},
    {{"learned", no_argument, NULL, 'L'}, SBOPT_LEARNED},
    {{"approve", required_argument, NULL, 'A'}, SBOPT_APPROVE},
    {{"deny", required_argument, NULL, 'D'}, SBOPT_DENY},
    {{"enforce", no_argument, NULL, 'E'}, SBOPT_ENFORCE},
    {{"api-key-file", required_argument, NULL, 'K'}, SBOPT_API_KEY_FILE},
    {{"pubkey", required_argument, NULL, 'P'}, SBOPT_PUBKEY},
    {{"lines", required_argument, NULL, 'l'}, SBOPT_LINES},
    {{"follow", no_argument, NULL, 'f'}, SBOPT_FOLLOW},
    {{"network", no_argument, NULL, 'N'}, SBOPT_NETWORK},
};
#define N_OPTS (sizeof(table) / sizeof(table[0]))

static void usage(const struct sbref_cmd *cmd, FILE *f)
{
	fprintf(f,
		"usage: kars %s %s\n"
		"       [-n NS] [--state DIR] [--state-dir DIR]\n"
		"  NAME or NS/NAME names the sandbox (namespace default unless -n NS).\n"
		"  --state-dir DIR  kars up --local's directory (default $KARS_LOCAL_DIR, else\n"
		"                   the store's parent: /var/lib/kars)\n"
		"  --state DIR      the store (default DIR/state of --state-dir, else\n"
		"                   $KARS_STATE_DIR, else %s)\n"
		"Exit status: 0 done, 1 refused or failed, 2 bad usage (docs/cli.md).\n",
		cmd->verb, cmd->synopsis, KARS_CLI_DEFAULT_STORE);
}

int sbopts_usage_error(const struct sbref_cmd *cmd, const char *why)
{
	fprintf(stderr, "kars: %s: %s\n", cmd->verb, why);
	usage(cmd, stderr);
	return 2;
}

static const char *name_of(int c)
{
	for (size_t i = 0; i < N_OPTS; i++)
		if (table[i].opt.val == c)
			return table[i].opt.name;
	return "?";
}

int sbopts_parse(const struct sbref_cmd *cmd, int argc, char **argv, struct sbopts *o)
{
	struct option opts[N_OPTS + 1];
	char msg[160], *end;
	int c, dd = argc;

	memset(o, 0, sizeof(*o));
	memset(opts, 0, sizeof(opts));
	for (size_t i = 0; i < N_OPTS; i++)
		opts[i] = table[i].opt;
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--")) {
			dd = i;
			o->command = argv + i + 1;
			o->ncommand = argc - i - 1;
			break;
		}
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(dd, argv, ":n:o:fh", opts, NULL)) != -1) {
		if (c == '?' || c == ':') {
			snprintf(msg, sizeof(msg), "%s: %s", argv[optind - 1],
				 c == '?' ? "unknown option" : "needs a value");
			return sbopts_usage_error(cmd, msg);
		}
		for (size_t i = 0; i < N_OPTS; i++)
			if (table[i].opt.val == c && table[i].bit &&
			    !(table[i].bit & cmd->allowed)) {
				snprintf(msg, sizeof(msg), "--%s is not an option of %s",
					 name_of(c), cmd->verb);
				return sbopts_usage_error(cmd, msg);
			}
		switch (c) {
		case 'h':
			usage(cmd, stdout);
			return -1;
		case 'n':
			o->ns = optarg;
			break;
		case 'S':
			o->store = optarg;
			break;
		case 'R':
			o->root = optarg;
			break;
		case 'o':
			if (strcmp(optarg, "json") && strcmp(optarg, "yaml")) {
				snprintf(msg, sizeof(msg), "-o: \"%.64s\" is not json or yaml",
					 optarg);
				return sbopts_usage_error(cmd, msg);
			}
			o->output = optarg;
			break;
		case 'L':
			o->learned = true;
			break;
		case 'A':
			o->approve = optarg;
			break;
		case 'D':
			o->deny = optarg;
			break;
		case 'E':
			o->enforce = true;
			break;
		case 'K':
			o->api_key_file = optarg;
			break;
		case 'P':
			o->pubkey = optarg;
			break;
		case 'l':
			errno = 0;
			o->lines = strtol(optarg, &end, 10);
			if (errno || *end || !*optarg || o->lines < 1 || o->lines > 1000000)
				return sbopts_usage_error(cmd, "--lines: expected 1 to 1000000");
			break;
		case 'f':
			o->follow = true;
			break;
		case 'N':
			o->network = true;
			break;
		}
	}
	o->args = argv + optind;
	o->nargs = dd - optind;
	return 0;
}

int sbopts_resolve(const struct sbref_cmd *cmd, const struct sbopts *o, const char *name,
		   struct kars_sbref *ref)
{
	struct kars_err err = {};

	if (kars_sbref_resolve(name, o->ns, o->store, o->root, ref, &err)) {
		fprintf(stderr, "kars: %s: %s\n", cmd->verb, err.msg);
		return -1;
	}
	return 0;
}
