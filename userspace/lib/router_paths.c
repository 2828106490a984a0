/* router_paths.c - see router_paths.h. */
#include "router_paths.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>

/* The router keeps each path in a 1024-byte field (router/config.h). */
#define ROUTER_PATH_MAX 1023

static int set_path(json_t *cfg, const char *obj, const char *key, const char *dir,
		    const char *file, struct kars_err *err)
{
	json_t *o = json_object_get(cfg, obj);
	char path[PATH_MAX];
	int n = snprintf(path, sizeof(path), "%s/%s", dir, file);

	if (n < 0 || n > ROUTER_PATH_MAX)
		return kars_err_set(err, ENAMETOOLONG, "%s.%s: \"%s/%s\" is longer than %d bytes",
				    obj, key, dir, file, ROUTER_PATH_MAX);
	if (!o) {
		o = json_object();
		if (!o || json_object_set_new(cfg, obj, o))
			return kars_err_set(err, ENOMEM, "out of memory");
	}
	if (!json_is_object(o))
		return kars_err_set(err, EINVAL, "%s: expected an object", obj);
	if (json_object_set_new(o, key, json_string(path)))
		return kars_err_set(err, ENOMEM, "out of memory");
	return 0;
}

int kars_router_config_set_policy_files(json_t *cfg, const char *router_dir, struct kars_err *err)
{
	int ret;

	if (!json_is_object(cfg) || !router_dir || !*router_dir)
		return kars_err_set(err, EINVAL, "router config: an object and a directory needed");
	ret = set_path(cfg, "policy", "file", router_dir, KARS_IP_FILE, err);
	if (!ret)
		ret = set_path(cfg, "governance", "profileFile", router_dir, KARS_TP_FILE, err);
	return ret;
}
