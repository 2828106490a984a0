/* metrics.c - see metrics.h. */
#include "metrics.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "karsd_proc.h"

#define MAX_FAMILIES 256
#define MAX_SERIES   8192
#define NAME_LEN     128

struct family {
	char name[NAME_LEN];
	bool help, type, closed;
	bool counter;
};

struct checker {
	struct family fam[MAX_FAMILIES];
	int n_fam, cur; /* cur: the family whose samples run, -1 none */
	char **series;
	size_t n_series;
	int line;
	char *errbuf;
	size_t errlen;
};

__attribute__((format(printf, 2, 3))) static int bad(struct checker *c, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(c->errbuf, c->errlen, "metrics line %d: ", c->line);

	va_start(ap, fmt);
	if (n >= 0 && (size_t)n < c->errlen)
		vsnprintf(c->errbuf + n, c->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -EPROTO;
}

/* Length of the name at s ([a-zA-Z_:][a-zA-Z0-9_:]*, no ':' for labels). */
static size_t name_len(const char *s, bool label)
{
	size_t n = 0;

	for (;; n++) {
		char ch = s[n];
		bool alpha = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' ||
			     (!label && ch == ':');

		if (!alpha && !(n > 0 && ch >= '0' && ch <= '9'))
			return n;
	}
}

static struct family *family(struct checker *c, const char *name, size_t len, bool add)
{
	for (int i = 0; i < c->n_fam; i++)
		if (strlen(c->fam[i].name) == len && !strncmp(c->fam[i].name, name, len))
			return &c->fam[i];
	if (!add || c->n_fam == MAX_FAMILIES || len >= NAME_LEN)
		return NULL;
	memcpy(c->fam[c->n_fam].name, name, len);
	return &c->fam[c->n_fam++];
}

/* "# HELP name text" or "# TYPE name type"; other comments pass. */
static int comment(struct checker *c, const char *l)
{
	bool help = !strncmp(l, "# HELP ", 7), type = !strncmp(l, "# TYPE ", 7);
	const char *name = l + 7, *rest;
	struct family *f;
	size_t n;

	if (!help && !type)
		return 0;
	n = name_len(name, false);
	if (!n || name[n] != ' ')
		return bad(c, "%s: bad metric name", help ? "HELP" : "TYPE");
	f = family(c, name, n, true);
	if (!f)
		return bad(c, "too many metric families");
	rest = name + n + 1;
	if (help) {
		if (f->help)
			return bad(c, "second HELP for %s", f->name);
		for (const char *p = rest; *p; p++)
			if (*p == '\\' && p[1] != '\\' && p[1] != 'n')
				return bad(c, "HELP of %s: bad escape", f->name);
			else if (*p == '\\')
				p++;
		f->help = true;
		return 0;
	}
	if (f->type)
		return bad(c, "second TYPE for %s", f->name);
	if (f->closed || c->cur == (int)(f - c->fam))
		return bad(c, "TYPE for %s after its samples", f->name);
	if (strcmp(rest, "counter") && strcmp(rest, "gauge") && strcmp(rest, "untyped") &&
	    strcmp(rest, "histogram") && strcmp(rest, "summary"))
		return bad(c, "TYPE of %s: unknown type \"%s\"", f->name, rest);
	f->type = true;
	f->counter = !strcmp(rest, "counter");
	if (f->counter && (n < 6 || strncmp(name + n - 6, "_total", 6)))
		return bad(c, "counter %s does not end in _total", f->name);
	return 0;
}

/* {a="x",b="y"} at *p; *p moves past it. */
static int labels(struct checker *c, const char **p)
{
	const char *s = *p + 1;

	for (;;) {
		size_t n = name_len(s, true);

		if (!n || s[n] != '=' || s[n + 1] != '"')
			return bad(c, "bad label name or missing =\"");
		for (s += n + 2; *s != '"'; s++) {
			if (!*s)
				return bad(c, "unterminated label value");
			if (*s == '\\' && s[1] != '\\' && s[1] != '"' && s[1] != 'n')
				return bad(c, "bad escape in a label value");
			if (*s == '\\')
				s++;
		}
		s++;
		if (*s == '}')
			break;
		if (*s != ',')
			return bad(c, "expected , or } after a label");
		s++;
	}
	*p = s + 1;
	return 0;
}

static int sample(struct checker *c, const char *l)
{
	size_t n = name_len(l, false);
	const char *p = l + n, *val;
	struct family *f;
	char *end, *key;
	double v;
	int ret;

	if (!n)
		return bad(c, "bad metric name");
	f = family(c, l, n, false);
	if (!f || !f->type)
		return bad(c, "sample of %.*s without a TYPE line", (int)n, l);
	if (c->cur != (int)(f - c->fam)) {
		if (f->closed)
			return bad(c, "samples of %s are not one group", f->name);
		if (c->cur >= 0)
			c->fam[c->cur].closed = true;
		c->cur = (int)(f - c->fam);
	}
	if (*p == '{' && (ret = labels(c, &p)))
		return ret;
	if (*p != ' ')
		return bad(c, "expected a space before the value");
	val = p + 1;
	if (!strcmp(val, "+Inf") || !strcmp(val, "-Inf") || !strcmp(val, "NaN"))
		v = 0;
	else {
		errno = 0;
		v = strtod(val, &end);
		if (end == val || errno)
			return bad(c, "bad value \"%s\"", val);
		if (*end == ' ') { /* a timestamp: an integer */
			strtoll(end + 1, &end, 10);
		}
		if (*end)
			return bad(c, "trailing bytes after the value: \"%s\"", end);
	}
	if (f->counter && (v < 0 || !strcmp(val, "-Inf")))
		return bad(c, "counter %s is negative", f->name);
	key = strndup(l, (size_t)(p - l));
	if (!key || c->n_series == MAX_SERIES) {
		free(key);
		return bad(c, "too many series");
	}
	for (size_t i = 0; i < c->n_series; i++)
		if (!strcmp(c->series[i], key)) {
			ret = bad(c, "series %s appears twice", key);
			free(key);
			return ret;
		}
	c->series[c->n_series++] = key;
	return 0;
}

int kst_metrics_check(const char *text, char *errbuf, size_t errlen)
{
	struct checker *c = calloc(1, sizeof(*c));
	const char *l = text;
	int ret = 0;

	if (!c || !(c->series = calloc(MAX_SERIES, sizeof(char *)))) {
		free(c);
		snprintf(errbuf, errlen, "out of memory");
		return -ENOMEM;
	}
	c->cur = -1;
	c->errbuf = errbuf;
	c->errlen = errlen;
	if (!*text)
		ret = bad(c, "empty text");
	while (!ret && *l) {
		const char *nl = strchr(l, '\n');
		char *line;

		c->line++;
		if (!nl) {
			ret = bad(c, "no newline at the end");
			break;
		}
		line = strndup(l, (size_t)(nl - l));
		if (!line)
			ret = bad(c, "out of memory");
		else if (!*line)
			ret = bad(c, "empty line");
		else if (line[0] == '#')
			ret = comment(c, line);
		else
			ret = sample(c, line);
		free(line);
		l = nl + 1;
	}
	for (size_t i = 0; i < c->n_series; i++)
		free(c->series[i]);
	free(c->series);
	free(c);
	return ret;
}

int kst_metrics_fetch(char **text, char *errbuf, size_t errlen)
{
	json_t *req = json_pack("{s:s}", "op", "metrics"), *resp = NULL;
	const char *t;
	int ret;

	*text = NULL;
	ret = kst_call(req, &resp, errbuf, errlen);
	if (ret)
		goto out;
	t = kst_json_str(resp, "text");
	ret = t ? kst_metrics_check(t, errbuf, errlen) : -EPROTO;
	if (ret)
		goto out;
	*text = strdup(t);
	if (!*text)
		ret = -ENOMEM;
out:
	json_decref(req);
	json_decref(resp);
	return ret;
}

double kst_metric(const char *text, const char *series, double dflt)
{
	size_t n = strlen(series);

	for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL)
		if (!strncmp(l, series, n) && l[n] == ' ')
			return strtod(l + n + 1, NULL);
	return dflt;
}
