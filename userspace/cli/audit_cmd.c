/* audit_cmd.c - `kars audit verify FILE [--pubkey FILE]` (a sandbox NAME
 * instead of FILE, and `tail NAME`, are sandbox_ops_cmd.c's).
 *
 * Walks a whole audit log with kars_audit_verify(): exit 0 and a summary on
 * stdout when every record checks out, exit 1 with the first bad record
 * (line, byte, seq, what) on stderr when one does not. Without --pubkey the
 * signatures are checked against the key the log carries, which shows the
 * log is intact but not who wrote it; the summary says which it was.
 */
#include "audit_cmd.h"

#include <errno.h>
#include <getopt.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "names.h"
#include "sandbox_ops_cmd.h"

void kars_cli_audit_usage(FILE *f)
{
	fprintf(f, "usage: kars audit verify FILE|NAME [--pubkey FILE]\n"
		   "       kars audit tail NAME [--lines N] [-f] [-o json]\n"
		   "  NAME: a local sandbox (its router's audit chain); FILE: a log\n");
}

static int usage_error(const char *what)
{
	fprintf(stderr, "kars: audit: %s\n", what);
	kars_cli_audit_usage(stderr);
	return 2;
}

static void summary(const char *file, const struct kars_audit_report *rep, bool keyed)
{
	char hash[2 * KARS_AUDIT_HASH_LEN + 1], key[2 * KARS_AUDIT_PUBKEY_LEN + 1];

	kars_audit_hex(rep->last_hash, sizeof(rep->last_hash), hash);
	printf("%s: valid: %llu records (%llu entries, %llu checkpoints)", file,
	       (unsigned long long)rep->records, (unsigned long long)rep->entries,
	       (unsigned long long)rep->checkpoints);
	if (rep->records)
		printf(", seq 0 to %llu, last hash %s", (unsigned long long)rep->records - 1, hash);
	printf("\n");
	if (!rep->signed_any) {
		printf("not signed: the log has no checkpoint\n");
		return;
	}
	kars_audit_hex(rep->key, sizeof(rep->key), key);
	printf("signed through seq %llu by %s %s\n", (unsigned long long)rep->signed_seq,
	       keyed ? "the public key given,"
		     : "the key in the log (pass --pubkey to check whose):",
	       key);
	if (rep->signed_seq + 1 < rep->records)
		printf("%llu records after seq %llu are not signed yet (the log is open, or its "
		       "writer stopped before its next checkpoint)\n",
		       (unsigned long long)(rep->records - rep->signed_seq - 1),
		       (unsigned long long)rep->signed_seq);
}

static int verify(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"pubkey", required_argument, NULL, 'k'},
	    {NULL, 0, NULL, 0},
	};
	const char *keyfile = NULL;
	int opt;

	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt != 'k')
			return usage_error("verify: unknown option or missing argument");
		keyfile = optarg;
	}
	if (argc - optind != 1)
		return usage_error("verify: expected one FILE");
	return kars_cli_audit_verify_file(argv[optind], keyfile);
}

int kars_cli_audit_verify_file(const char *file, const char *keyfile)
{
	uint8_t pubkey[KARS_AUDIT_PUBKEY_LEN];
	struct kars_audit_report rep;
	struct kars_err err = {0};
	int ret;

	if (keyfile && kars_audit_pubkey_read(keyfile, pubkey, &err)) {
		fprintf(stderr, "kars: audit verify: --pubkey %s\n", err.msg);
		return 1;
	}
	ret = kars_audit_verify(file, keyfile ? pubkey : NULL, &rep, &err);
	if (ret == -EBADMSG) {
		fprintf(stderr, "kars: audit verify: %s: %s\n", file, err.msg);
		fprintf(stderr,
			"kars: audit verify: %s: INVALID (%llu records before it verified)\n", file,
			(unsigned long long)rep.records);
		return 1;
	}
	if (ret) {
		fprintf(stderr, "kars: audit verify: %s\n", err.msg);
		return 1;
	}
	summary(file, &rep, keyfile != NULL);
	return 0;
}

/* NAME or NS/NAME, as Kubernetes names them. */
static bool looks_like_sandbox(const char *arg)
{
	struct kars_err err = {0};
	char owner[KARS_SANDBOX_NAME_MAX + 16];

	if (snprintf(owner, sizeof(owner), "%s%s", strchr(arg, '/') ? "" : "default/", arg) >=
	    (int)sizeof(owner))
		return false;
	return kars_sandbox_name_check(owner, "sandbox", &err) == 0;
}

/* verify's argument is a FILE when one exists by that name or when it cannot
 * be a sandbox's name (a path), else a local sandbox NAME
 * (sandbox_ops_cmd.c). */
static bool names_sandbox(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--pubkey")) {
			i++;
			continue;
		}
		if (argv[i][0] == '-')
			continue;
		return access(argv[i], F_OK) != 0 && looks_like_sandbox(argv[i]);
	}
	return false;
}

int kars_cli_audit(int argc, char **argv)
{
	for (int i = 0; i < argc; i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			kars_cli_audit_usage(stdout);
			return 0;
		}
	if (argc >= 1 && (strcmp(argv[0], "tail") == 0 ||
			  (strcmp(argv[0], "verify") == 0 && names_sandbox(argc, argv))))
		return kars_cli_audit_sandbox(argc + 1, argv - 1); /* argv[-1]: "audit" */
	if (argc >= 1 && strcmp(argv[0], "verify") == 0)
		return verify(argc, argv);
	return usage_error("unknown or incomplete command");
}
