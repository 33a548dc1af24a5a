// SPDX-License-Identifier: MIT
/*
 * bench-api: API round-trip latency over the unix socket.
 *
 *   bench/run api [N]     (N requests per figure, default 5000, or API_BENCH_N)
 *
 * The real API server (libmicrohttpd, router, parsers) in front of the fake
 * backend from tests/api, in this process; a libcurl client as fvmctl uses
 * it. Figures: GET / and PATCH /vm (alternating Paused/Resumed) on a kept-
 * alive connection, and GET / on a new connection each time. The floor is
 * the same client against a bare HTTP responder on a unix socket (read the
 * request, write a fixed answer), measured in the same run: the difference
 * is what the server and the API layer cost.
 */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "fake-backend.h"
#include "util.h"

struct figure {
	const char *request;
	const char *server; /* "fvm" or "floor" */
	const char *conn;   /* "keep-alive" or "new" */
	size_t n;
	double p50, p99, mean;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static size_t discard(char *p, size_t size, size_t n, void *o)
{
	return size * n;
}

/* ---- the floor: a bare HTTP/1.1 responder ---- */

static void *floor_conn(void *arg)
{
	static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
				     "Content-Length: 2\r\n\r\n{}";
	int fd = (int)(intptr_t)arg;
	char buf[4096];
	size_t have = 0;

	for (;;) {
		ssize_t n = read(fd, buf + have, sizeof(buf) - have - 1);
		char *end, *cl;
		size_t need;

		if (n <= 0)
			break;
		have += (size_t)n;
		buf[have] = '\0';
		/* Answer each complete request (headers plus Content-Length bytes). */
		while ((end = strstr(buf, "\r\n\r\n"))) {
			cl = strcasestr(buf, "content-length:");
			need = (size_t)(end - buf) + 4 +
			       (cl && cl < end ? strtoul(cl + 15, NULL, 10) : 0);
			if (have < need)
				break;
			if (write(fd, answer, sizeof(answer) - 1) < 0)
				goto out;
			memmove(buf, buf + need, have - need);
			have -= need;
			buf[have] = '\0';
		}
		if (have >= sizeof(buf) - 1)
			break;
	}
out:
	close(fd);
	return NULL;
}

static void *floor_accept(void *arg)
{
	int lfd = (int)(intptr_t)arg;

	for (;;) {
		pthread_t t;
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0)
			return NULL;
		if (pthread_create(&t, NULL, floor_conn, (void *)(intptr_t)fd) == 0)
			pthread_detach(t);
		else
			close(fd);
	}
}

static int floor_start(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	pthread_t t;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return neg_errno();
	if (snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path) >= (int)sizeof(sa.sun_path)) {
		close(fd);
		return -ENAMETOOLONG;
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 16) < 0 ||
	    pthread_create(&t, NULL, floor_accept, (void *)(intptr_t)fd) != 0) {
		close(fd);
		return -EIO;
	}
	pthread_detach(t);
	return 0;
}

/* ---- the client ---- */

static int measure(const char *sock, const char *method, const char *path, const char *body,
		   const char *alt_body, bool reuse, size_t n, struct figure *fig)
{
	uint64_t *t = calloc(n, sizeof(*t));
	struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	CURL *c = curl_easy_init();
	char url[256];
	long status = 0;
	double sum = 0;
	size_t warm = n / 10 + 10;

	if (!t || !c || !hdrs)
		return -ENOMEM;
	hdrs = curl_slist_append(hdrs, "Expect:");
	snprintf(url, sizeof(url), "http://localhost%s", path);
	curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, sock);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_FORBID_REUSE, reuse ? 0L : 1L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);

	for (size_t i = 0; i < warm + n; i++) {
		const char *b = (i & 1) && alt_body ? alt_body : body;
		uint64_t t0;

		if (b)
			curl_easy_setopt(c, CURLOPT_POSTFIELDS, b);
		t0 = now_ns();
		if (curl_easy_perform(c) != CURLE_OK) {
			fprintf(stderr, "bench api: %s %s failed\n", method, path);
			return -EIO;
		}
		if (i >= warm)
			t[i - warm] = now_ns() - t0;
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
		if (status >= 300) {
			fprintf(stderr, "bench api: %s %s answered %ld\n", method, path, status);
			return -EIO;
		}
	}
	qsort(t, n, sizeof(*t), cmp_u64);
	for (size_t i = 0; i < n; i++)
		sum += (double)t[i];
	fig->n = n;
	fig->p50 = (double)t[n / 2] / 1000.0;
	fig->p99 = (double)t[(n * 99) / 100] / 1000.0;
	fig->mean = sum / (double)n / 1000.0;
	free(t);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	return 0;
}

int main(int argc, char **argv)
{
	const char *env = getenv("API_BENCH_N");
	size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : env ? strtoul(env, NULL, 10) : 5000;
	char dir[] = "/tmp/fvm-bench-api-XXXXXX", sock[128], floor_sock[128];
	struct fake_backend fb;
	struct api_server *srv;
	struct figure figs[6];
	size_t nf = 0;
	int r;

	if (n < 10)
		n = 10;
	if (!mkdtemp(dir))
		return 1;
	snprintf(sock, sizeof(sock), "%s/bench.sock", dir);
	snprintf(floor_sock, sizeof(floor_sock), "%s/floor.sock", dir);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (fake_backend_init(&fb, VM_STATE_RUNNING, dir, NULL) < 0)
		return 1;
	r = api_server_start(sock, &fake_backend_ops, &fb, &srv);
	if (r < 0 || floor_start(floor_sock) < 0) {
		fprintf(stderr, "bench api: cannot start the servers: %s\n", strerror(-r));
		return 1;
	}

	static const struct {
		const char *request, *server, *conn, *method, *path, *body, *alt;
		bool reuse;
	} runs[] = {
	    {"GET /", "fvm", "keep-alive", "GET", "/", NULL, NULL, true},
	    {"PATCH /vm", "fvm", "keep-alive", "PATCH", "/vm", "{\"state\":\"Paused\"}",
	     "{\"state\":\"Resumed\"}", true},
	    {"GET /", "fvm", "new", "GET", "/", NULL, NULL, false},
	    {"GET /", "floor", "keep-alive", "GET", "/", NULL, NULL, true},
	    {"PATCH /vm", "floor", "keep-alive", "PATCH", "/vm", "{\"state\":\"Paused\"}",
	     "{\"state\":\"Resumed\"}", true},
	    {"GET /", "floor", "new", "GET", "/", NULL, NULL, false},
	};
	for (size_t i = 0; i < ARRAY_SIZE(runs); i++) {
		struct figure *f = &figs[nf];

		*f = (struct figure){runs[i].request, runs[i].server, runs[i].conn};
		r = measure(strcmp(runs[i].server, "fvm") == 0 ? sock : floor_sock, runs[i].method,
			    runs[i].path, runs[i].body, runs[i].alt, runs[i].reuse, n, f);
		if (r < 0)
			return 1;
		printf("{\"bench\":\"api\",\"request\":\"%s\",\"server\":\"%s\",\"conn\":\"%s\","
		       "\"n\":%zu,\"p50_us\":%.1f,\"p99_us\":%.1f,\"mean_us\":%.1f}\n",
		       f->request, f->server, f->conn, f->n, f->p50, f->p99, f->mean);
		fflush(stdout);
		nf++;
	}

	printf("\n%-10s %-6s %-11s %7s %9s %9s\n", "request", "server", "connection", "n", "p50 us",
	       "p99 us");
	for (size_t i = 0; i < nf; i++)
		printf("%-10s %-6s %-11s %7zu %9.1f %9.1f\n", figs[i].request, figs[i].server,
		       figs[i].conn, figs[i].n, figs[i].p50, figs[i].p99);
	printf("(floor: the same libcurl client against a bare responder on a unix socket)\n");

	api_server_stop(srv);
	fake_backend_fini(&fb);
	unlink(floor_sock);
	rmdir(dir);
	curl_global_cleanup();
	return 0;
}
