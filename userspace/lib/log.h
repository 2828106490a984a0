/* log.h - one logger for every kars process, libbpf's output included.
 *
 * Lines go to stderr as "<level> <message>", or as JSON objects
 * ({"level":..,"msg":..}) when a daemon runs under a log collector.
 */
#ifndef KARS_LOG_H
#define KARS_LOG_H

#include <stdbool.h>

enum kars_log_level {
	KARS_LOG_ERROR = 0,
	KARS_LOG_WARN = 1,
	KARS_LOG_INFO = 2,
	KARS_LOG_DEBUG = 3,
};

void kars_log_set_level(enum kars_log_level level);
enum kars_log_level kars_log_get_level(void);
void kars_log_set_json(bool json);
/* Returns 0, or -EINVAL for a name other than error|warn|info|debug. */
int kars_log_level_from_name(const char *name, enum kars_log_level *out);

void kars_log(enum kars_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The --log-level option of every kars daemon: sets the level, or says on
 * stderr what is wrong ("<prog>: --log-level: ...") and returns -EINVAL. */
int kars_log_level_option(const char *prog, const char *arg);

/* Sends libbpf's messages through kars_log (its debug output only at debug). */
void kars_log_route_libbpf(void);

#define log_error(...) kars_log(KARS_LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  kars_log(KARS_LOG_WARN, __VA_ARGS__)
#define log_info(...)  kars_log(KARS_LOG_INFO, __VA_ARGS__)
#define log_debug(...) kars_log(KARS_LOG_DEBUG, __VA_ARGS__)

#endif
