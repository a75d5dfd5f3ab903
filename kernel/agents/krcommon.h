/* SPDX-License-Identifier: GPL-2.0 */
/*
 * cmacheck kreplay agents: helpers shared by krdrive, krpressure and krpin.
 * Everything here is our own code; it runs as root inside the qemu guest.
 */
#ifndef KRCOMMON_H
#define KRCOMMON_H

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KR_PAGE 4096UL
#define KR_MAX_AREAS 8

struct kr_area {
	unsigned long base, count; /* pfns */
};

/* CMA areas given as "BASE:COUNT[,BASE:COUNT...]" (pfns) */
static inline int kr_parse_areas(const char *s, struct kr_area *a, int max)
{
	int n = 0;

	while (s && *s && n < max) {
		char *end;

		a[n].base = strtoul(s, &end, 0);
		if (*end != ':')
			return -1;
		a[n].count = strtoul(end + 1, &end, 0);
		n++;
		if (*end == ',')
			end++;
		else if (*end)
			return -1;
		s = end;
	}
	return n;
}

static inline int kr_in_areas(unsigned long pfn, const struct kr_area *a, int n)
{
	for (int i = 0; i < n; i++)
		if (pfn >= a[i].base && pfn < a[i].base + a[i].count)
			return 1;
	return 0;
}

/* a field of /proc/meminfo, in KiB; -1 when missing */
static inline long kr_meminfo(const char *key)
{
	char line[256];
	size_t kl = strlen(key);
	long v = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, kl) && line[kl] == ':') {
			v = strtol(line + kl + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

/*
 * PFNs of the pages [addr, addr + n pages) of this process from
 * /proc/self/pagemap; 0 for a page that is not present.
 */
static inline int kr_pfns(int pagemap_fd, const void *addr, size_t n, uint64_t *pfn)
{
	size_t done = 0;
	uint64_t buf[512];

	while (done < n) {
		size_t k = n - done < 512 ? n - done : 512;
		off_t off = (off_t)(((uintptr_t)addr / KR_PAGE + done) * 8);
		ssize_t r = pread(pagemap_fd, buf, k * 8, off);

		if (r != (ssize_t)(k * 8))
			return -1;
		for (size_t i = 0; i < k; i++)
			pfn[done + i] = (buf[i] >> 63) & 1 ? buf[i] & ((1ULL << 55) - 1) : 0;
		done += k;
	}
	return 0;
}

/* growable string */
struct kr_str {
	char *s;
	size_t len, cap;
};

static inline void kr_puts(struct kr_str *b, const char *fmt, ...)
{
	va_list ap;
	int need;

	for (;;) {
		va_start(ap, fmt);
		need = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (b->s && (size_t)need < b->cap - b->len) {
			b->len += need;
			return;
		}
		b->cap = (b->cap + need + 1) * 2;
		b->s = realloc(b->s, b->cap);
		if (!b->s)
			abort();
		if (b->len == 0)
			b->s[0] = 0;
	}
}

/*
 * Append a list of numbers as comma-separated runs "a-b" (consecutive,
 * ascending by one) or "a"; "-" for an empty list.
 */
static inline void kr_put_runs(struct kr_str *b, const uint64_t *v, size_t n)
{
	if (!n) {
		kr_puts(b, "-");
		return;
	}
	for (size_t i = 0; i < n;) {
		size_t j = i;

		while (j + 1 < n && v[j + 1] == v[j] + 1)
			j++;
		if (j == i)
			kr_puts(b, "%s%llu", i ? "," : "", (unsigned long long)v[i]);
		else
			kr_puts(b, "%s%llu-%llu", i ? "," : "", (unsigned long long)v[i],
				(unsigned long long)v[j]);
		i = j + 1;
	}
}

/* write all of buf */
static inline int kr_write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t w = write(fd, buf, len);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += w;
		len -= w;
	}
	return 0;
}

/* read one line (without the newline) from fd, byte by byte (pipes) */
static inline int kr_read_line(int fd, char *buf, size_t cap)
{
	size_t n = 0;

	for (;;) {
		char c;
		ssize_t r = read(fd, &c, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return n ? (int)n : -1;
		if (c == '\n')
			break;
		if (n + 1 < cap)
			buf[n++] = c;
	}
	buf[n] = 0;
	return (int)n;
}

#endif
