/* log.c - see log.h. */
#include "log.h"

#include <bpf/libbpf.h>
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static enum kars_log_level current_level = KARS_LOG_INFO;
static bool json_output;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void kars_log_set_level(enum kars_log_level level)
{
	current_level = level;
}

enum kars_log_level kars_log_get_level(void)
{
	return current_level;
}

void kars_log_set_json(bool json)
{
	json_output = json;
}

int kars_log_level_from_name(const char *name, enum kars_log_level *out)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(name, level_names[i]) == 0) {
			*out = (enum kars_log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

int kars_log_level_option(const char *prog, const char *arg)
{
	enum kars_log_level level;

	if (kars_log_level_from_name(arg, &level)) {
		fprintf(stderr, "%s: --log-level: \"%s\" is not error, warn, info or debug\n", prog,
			arg);
		return -EINVAL;
	}
	kars_log_set_level(level);
	return 0;
}

static void log_va(enum kars_log_level level, const char *fmt, va_list ap)
{
	char msg[2048];
	size_t len;

	if (level > current_level)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	len = strlen(msg);
	while (len && msg[len - 1] == '\n')
		msg[--len] = '\0';
	if (json_output) {
		json_t *o = json_pack("{s:s,s:s}", "level", level_names[level], "msg", msg);
		char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;

		if (s)
			fprintf(stderr, "%s\n", s);
		free(s);
		json_decref(o);
		return;
	}
	fprintf(stderr, "%s %s\n", level_names[level], msg);
}

void kars_log(enum kars_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_va(level, fmt, ap);
	va_end(ap);
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	enum kars_log_level mapped = KARS_LOG_DEBUG;
	char *msg;

	if (level == LIBBPF_WARN)
		mapped = KARS_LOG_WARN;
	else if (level == LIBBPF_INFO)
		mapped = KARS_LOG_DEBUG;
	if (mapped > current_level)
		return 0;
	/* A verifier log comes as one message of many kilobytes, its reason
	 * last: logged line by line so that no line limit cuts the reason off. */
	if (vasprintf(&msg, fmt, ap) < 0)
		return 0;
	for (char *line = msg, *end; *line; line = *end ? end + 1 : end) {
		end = strchr(line, '\n');
		if (!end)
			end = line + strlen(line);
		kars_log(mapped, "%.*s", (int)(end - line), line);
	}
	free(msg);
	return 0;
}

void kars_log_route_libbpf(void)
{
	libbpf_set_print(libbpf_print);
}
