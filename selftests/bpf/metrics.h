/* metrics.h - karsd's Prometheus metrics as the selftests read them: one
 * fetch (the control API's "metrics" op) that also checks the whole text
 * against the exposition format, and a reader of one series' value.
 *
 * The check is strict (Debian 12 has promtool only in the 96 MB prometheus
 * package): every line is a HELP, a TYPE or a sample; names and label names
 * are legal, label values and HELP text use only the format's escapes;
 * HELP and TYPE come at most once per family and before its samples; every
 * family has a TYPE, its samples form one group, counters end in _total and
 * are not negative, and no series appears twice.
 */
#ifndef KST_METRICS_H
#define KST_METRICS_H

#include <stdbool.h>
#include <stddef.h>

/* 0 with the text in *text (free() it) when karsd answered and the text is
 * valid; -EPROTO with the first offence (line number and why) in errbuf when
 * it is not, or another -errno when karsd could not be asked. */
int kst_metrics_fetch(char **text, char *errbuf, size_t errlen);
/* 0 when text is valid exposition, else -EPROTO with the line and why. */
int kst_metrics_check(const char *text, char *errbuf, size_t errlen);
/* The value of the series written exactly as series ("name" or
 * "name{a=\"b\"}"), or dflt when there is no such line. */
double kst_metric(const char *text, const char *series, double dflt);

#endif
