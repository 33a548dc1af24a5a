// SPDX-License-Identifier: MIT
/*
 * The HTTP side: a unix socket we create ourselves (so that its mode is
 * 0600 from the first connection on), served by libmicrohttpd with one
 * thread per connection. A stalled or slow client holds only its own
 * thread, idle connections time out, and the number of connections is
 * capped, so no client can hold up the VM or the other clients.
 */
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "api-router.h"
#include "fvm-config.h"
#include "log.h"
#include "util.h"

enum {
	/* Clients at once: each one costs a thread. */
	API_CONNECTION_LIMIT = 64,
	/* Seconds a connection may sit idle (or half-sent) before it is dropped. */
	API_CONNECTION_TIMEOUT_S = 10,
};

struct api_server {
	struct MHD_Daemon *mhd;
	struct api_ctx ctx;
	pthread_mutex_t serial_lock;
	char path[API_SOCK_PATH_MAX];
	char id[API_NAME_MAX];
	dev_t dev;
	ino_t ino;
};

/* What one request accumulates while its body arrives. */
struct api_conn {
	char *body;
	size_t len;
	size_t cap;
	bool too_large;
	bool answered;
};

static enum MHD_Result queue(struct MHD_Connection *conn, struct api_response *r)
{
	struct MHD_Response *resp;
	enum MHD_Result ok;

	if (r->body) {
		resp =
		    MHD_create_response_from_buffer_with_free_callback(r->body_len, r->body, free);
		if (!resp)
			return MHD_NO;
		r->body = NULL; /* MHD owns it now */
	} else {
		resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
		if (!resp)
			return MHD_NO;
	}
	if (r->content_type)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
	if (r->allow[0])
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
	ok = MHD_queue_response(conn, r->status, resp);
	MHD_destroy_response(resp);
	return ok;
}

static enum MHD_Result queue_fault(struct MHD_Connection *conn, unsigned int status,
				   const char *msg)
{
	struct api_response r;

	if (api_respond_fault(&r, status, "%s", msg) < 0)
		return MHD_NO;
	return queue(conn, &r);
}

static int body_append(struct api_conn *c, const char *data, size_t n)
{
	if (n > API_BODY_MAX - c->len) {
		c->too_large = true;
		return 0;
	}
	if (c->len + n > c->cap) {
		size_t cap = MAX(c->cap * 2, c->len + n);
		char *p = realloc(c->body, MIN(cap, (size_t)API_BODY_MAX));

		if (!p)
			return -ENOMEM;
		c->body = p;
		c->cap = MIN(cap, (size_t)API_BODY_MAX);
	}
	memcpy(c->body + c->len, data, n);
	c->len += n;
	return 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	struct api_server *srv = cls;
	struct api_conn *c = *con_cls;
	struct api_response r = {0};
	enum MHD_Result ok;

	if (!c) {
		const char *cl;

		c = calloc(1, sizeof(*c));
		if (!c)
			return MHD_NO;
		*con_cls = c;
		/* Refuse an announced oversized body before a byte of it is read. */
		cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						 MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl && strtoull(cl, NULL, 10) > API_BODY_MAX) {
			c->answered = true;
			return queue_fault(conn, 413, "the request body is larger than the limit");
		}
		return MHD_YES;
	}
	if (*upload_size) {
		if (!c->answered && !c->too_large && body_append(c, upload, *upload_size) < 0)
			return MHD_NO;
		*upload_size = 0;
		return MHD_YES;
	}
	if (c->answered)
		return MHD_YES;
	c->answered = true;
	if (c->too_large)
		return queue_fault(conn, 413, "the request body is larger than the limit");

	if (api_dispatch(&srv->ctx, api_method_parse(method), url, c->body ? c->body : "", c->len,
			 &r) < 0)
		return queue_fault(conn, 500, "out of memory");
	ok = queue(conn, &r);
	api_response_release(&r);
	return ok;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct api_conn *c = *con_cls;

	if (!c)
		return;
	free(c->body);
	free(c);
	*con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];
	size_t n;

	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n && line[n - 1] == '\n')
		line[--n] = '\0';
	log_warn("api: %s", line);
}

/*
 * True when something accepts connections at path: a live server we must
 * not steal the name from.
 */
static bool socket_alive(const struct sockaddr_un *sa)
{
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return false;
	return connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0;
}

/*
 * Bind under a temporary name, set the mode, listen, then rename into
 * place. connect() on a socket that is not listening yet fails, so no
 * client can get in before the mode is 0600, and the umask (process-wide,
 * shared with other threads) is never touched.
 */
static int socket_create(const char *path, dev_t *ret_dev, ino_t *ret_ino, int *ret_fd)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct sockaddr_un tmp = {.sun_family = AF_UNIX};
	_cleanup_close_ int fd = -1;
	struct stat st;
	int n;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	n = snprintf(tmp.sun_path, sizeof(tmp.sun_path), "%s.%d.tmp", path, (int)getpid());
	if (n < 0 || (size_t)n >= sizeof(tmp.sun_path))
		return -ENAMETOOLONG;
	if (socket_alive(&sa))
		return -EADDRINUSE;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return neg_errno();
	unlink(tmp.sun_path);
	if (bind(fd, (struct sockaddr *)&tmp, sizeof(tmp)) < 0)
		return neg_errno();
	if (chmod(tmp.sun_path, 0600) < 0 || listen(fd, API_CONNECTION_LIMIT) < 0 ||
	    stat(tmp.sun_path, &st) < 0 || rename(tmp.sun_path, path) < 0) {
		int r = neg_errno();

		unlink(tmp.sun_path);
		return r;
	}
	*ret_dev = st.st_dev;
	*ret_ino = st.st_ino;
	*ret_fd = TAKE_FD(fd);
	return 0;
}

static void instance_id_from_path(const char *path, char *id, size_t size)
{
	const char *base = strrchr(path, '/');
	size_t n;

	base = base ? base + 1 : path;
	n = strlen(base);
	if (n > 5 && strcmp(base + n - 5, ".sock") == 0)
		n -= 5;
	snprintf(id, size, "%.*s", (int)n, base);
}

int api_server_start(const char *socket_path, const struct api_backend_ops *ops, void *opaque,
		     struct api_server **ret)
{
	_cleanup_free_ struct api_server *srv = NULL;
	_cleanup_close_ int fd = -1;
	int mhd_fd, r;

	if (!socket_path || !ops || !ops->get_state || !ret)
		return -EINVAL;
	srv = calloc(1, sizeof(*srv));
	if (!srv)
		return -ENOMEM;
	r = socket_create(socket_path, &srv->dev, &srv->ino, &fd);
	if (r < 0)
		return r;
	snprintf(srv->path, sizeof(srv->path), "%s", socket_path);
	instance_id_from_path(socket_path, srv->id, sizeof(srv->id));
	pthread_mutex_init(&srv->serial_lock, NULL);
	srv->ctx = (struct api_ctx){
	    .ops = ops,
	    .opaque = opaque,
	    .instance_id = srv->id,
	    .version = FVM_VERSION,
	    .serial_lock = &srv->serial_lock,
	};

	/*
	 * MHD owns the listen socket it is given (it closes it when stopped)
	 * but does not say whether a failed start closed it: give it a
	 * duplicate, and keep ours for the cleanup path.
	 */
	mhd_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (mhd_fd < 0) {
		r = neg_errno();
		unlink(socket_path);
		pthread_mutex_destroy(&srv->serial_lock);
		return r;
	}
	srv->mhd = MHD_start_daemon(
	    MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
		MHD_USE_ERROR_LOG,
	    0, NULL, NULL, on_request, srv,
	    /* First, so that even option errors go through our logger. */
	    MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, srv, MHD_OPTION_LISTEN_SOCKET, mhd_fd,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned int)API_CONNECTION_LIMIT,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)API_CONNECTION_TIMEOUT_S,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_END);
	if (!srv->mhd) {
		unlink(socket_path);
		pthread_mutex_destroy(&srv->serial_lock);
		return -EIO;
	}
	*ret = TAKE_PTR(srv);
	return 0;
}

void api_server_stop(struct api_server *srv)
{
	struct stat st;

	if (!srv)
		return;
	/* Stops accepting, waits for the connection threads, closes the listen socket. */
	MHD_stop_daemon(srv->mhd);
	/* Remove the socket only if it is still ours, not a successor's. */
	if (stat(srv->path, &st) == 0 && st.st_dev == srv->dev && st.st_ino == srv->ino)
		unlink(srv->path);
	pthread_mutex_destroy(&srv->serial_lock);
	free(srv);
}
