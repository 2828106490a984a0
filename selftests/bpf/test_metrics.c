/* test_metrics.c - karsd's Prometheus text is valid exposition format, and
 * the harness's check of it (metrics.h) refuses what the format forbids, so
 * that the DNS tests' metric assertions stand on a checked text.
 */
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"
#include "metrics.h"

KST_TEST(metrics_exposition_valid)
{
	static const char *const bad[] = {
	    "kars_x 1\n",					    /* no TYPE */
	    "# TYPE kars_x gauge\nkars_x 1",			    /* no newline */
	    "# TYPE kars_x gauge\nkars_x{a=\"b} 1\n",		    /* unterminated */
	    "# TYPE kars_x gauge\nkars_x{a=\"\\q\"} 1\n",	    /* bad escape */
	    "# TYPE kars_x gauge\nkars_x{1a=\"b\"} 1\n",	    /* label name */
	    "# TYPE kars_x gauge\nkars_x one\n",		    /* value */
	    "# TYPE kars_x gauge\nkars_x 1\nkars_x 2\n",	    /* duplicate */
	    "# TYPE kars_x counter\nkars_x 1\n",		    /* no _total */
	    "# TYPE kars_x_total counter\nkars_x_total -1\n",	    /* negative */
	    "# TYPE kars_x gauge\n# TYPE kars_x gauge\nkars_x 1\n", /* two TYPEs */
	    "# TYPE kars_x gauge\nkars_x 1\n\n",		    /* empty line */
	    "# TYPE kars_x gauge\n# TYPE kars_y gauge\n"	    /* two groups */
	    "kars_x{a=\"1\"} 1\nkars_y 1\nkars_x{a=\"2\"} 1\n",
	    "# TYPE kars_x gauge\nkars_x 1\n# TYPE kars_x gauge\n", /* late TYPE */
	    "# TYPE kars_x bogus\nkars_x 1\n",			    /* type */
	};
	char err[256], *text = NULL;

	if (!ASSERT_OK(kst_metrics_fetch(&text, err, sizeof(err)), err))
		goto cleanup;
	ASSERT_GT(kst_metric(text, "kars_fqdn_entries_capacity", -1), 0, "a value is read");
	ASSERT_EQ(kst_metric(text, "kars_no_such_metric", -7), -7, "absent: the default");
	ASSERT_OK(kst_metrics_check("# HELP kars_x A \\\\ and a \\n.\n# TYPE kars_x gauge\n"
				    "kars_x{a=\"q\\\"\",b=\"\"} 1.5e3\nkars_x 2 1700000000\n",
				    err, sizeof(err)),
		  err);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char tag[64];

		snprintf(tag, sizeof(tag), "bad text %zu refused", i);
		ASSERT_ERRNO(-kst_metrics_check(bad[i], err, sizeof(err)), EPROTO, tag);
	}
cleanup:
	free(text);
}
