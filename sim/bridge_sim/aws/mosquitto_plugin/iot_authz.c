/*
 * iot_authz: AWS IoT style authentication and authorization for mosquitto 2.0 (plugin API v5).
 *
 * The Python stand-in (sim/bridge_sim/aws/authz.py) compiles the registry's ACTIVE certificates
 * and the IoT policies attached to them into a line-based table file; this plugin
 * - authenticates a TLS client by the SHA-256 of its certificate's DER (unknown => CONNACK
 *   "not authorized"), on MOSQ_EVT_BASIC_AUTH, which mosquitto 2.0.11 calls for every
 *   CONNECT when use_identity_as_username is off, with or without a username;
 * - authorizes iot:Connect / Publish / RetainPublish / Receive / Subscribe against the table;
 * - publishes AWS presence and subscription lifecycle events ($aws/events/presence/...,
 *   $aws/events/subscriptions/...);
 * - disconnects MQTT 3.1.1 clients that publish outside their policy, and clients whose
 *   certificate left the table (deactivated, revoked, deleted), as AWS IoT does.
 * Clients without a certificate can only come from the loopback listener (the TLS listener
 * has require_certificate): they are the stand-in's own tools and may do anything.
 *
 * The plugin is loaded globally (per_listener_settings false): mosquitto 2.0.11 delivers
 * MOSQ_EVT_TICK, the only safe place to kick clients, to global plugins only.
 *
 * Table format (one record a line, fields separated by one space, text fields %XX-escaped):
 *   iot-authz 1
 *   arn <arn prefix, e.g. arn:aws:iot:us-east-1:123456789012:>
 *   cert <sha256 of DER, hex> <certificate id> <subject CN>
 *   thing <thing name>                                     (belongs to the last cert)
 *   rule <A|D> <action mask> <-|A|N> <resource pattern>    (belongs to the last cert)
 * Action mask bits: 1 Connect, 2 Publish, 4 Receive, 8 Subscribe, 16 RetainPublish.
 * Condition: A = only when the client id names a thing attached to the certificate,
 * N = only when it does not. Pattern: an ARN glob; '*' and '?' are wildcards, '\' quotes the
 * next byte, byte 0x01 stands for the client id (matched literally). Rules are checked
 * against "<arn prefix><client|topic|topicfilter>/<name>"; explicit deny wins, default deny.
 * The table is re-read when its inode, size or mtime change: on every CONNECT, and at most
 * every 100 ms on ACL checks and ticks. The writer replaces it atomically (rename).
 *
 * Per-connection quotas of AWS IoT Core ("AWS IoT Core message broker and protocol limits and
 * quotas" in the AWS General Reference; reason codes from the developer guide's MQTT page), for
 * certificate clients only; plugin options, 0 switches a quota off:
 * - plugin_opt_connect_rate (default 0; AWS: 1): CONNECTs per second per client id. AWS
 *   "restricts MQTT CONNECT requests from the same accountId and clientId to 1 MQTT CONNECT
 *   operation per second" without saying what it answers. AWS lists CONNACK 0x97 "Quota
 *   exceeded" among its MQTT 5 reason codes (not 0x89 "Server busy" nor 0x9F "Connection rate
 *   exceeded"), so MQTT 5 gets 0x97. MQTT 3.1.1 has no quota code: our choice is 3 "Server
 *   unavailable" (transient, retry later) rather than 5 "Not authorized" (fix your policy). A
 *   CONNECT counts once its certificate is known (the account), before iot:Connect is checked;
 *   a throttled one does not push the next back. Keyed by client id alone (one account per
 *   broker).
 * - plugin_opt_max_subscriptions (default 0; AWS: 50): active subscriptions per connection.
 *   AWS "might reject subscription requests on the same connection in excess of this amount
 *   and the connection is closed. Clients should validate the SUBACK". We refuse the excess
 *   filters in the SUBACK and keep the connection (the documented SUBACK check is what clients
 *   can rely on). mosquitto 2.0 turns a refused filter into 0x80 for MQTT 3.1.1 (as AWS) but
 *   0x87 "Not authorized" for MQTT 5 where AWS lists 0x97 "Quota exceeded": a plugin cannot
 *   choose the SUBACK code. Re-subscribing to a held filter takes no slot; unsubscribing
 *   frees one. Subscriptions restored from a persistent session are not counted (mosquitto
 *   does not tell a plugin about them), only those made on the current connection.
 * - plugin_opt_publish_rate (default 0; AWS: 100): inbound PUBLISHes per second per
 *   connection, burst of one second's worth. AWS: "Publish requests that exceed that quota are
 *   discarded." Excess messages are dropped without closing the connection: MQTT 3.1.1 QoS 1
 *   still gets its PUBACK; MQTT 5 QoS 1 gets PUBACK 0x87 from mosquitto where AWS lists 0x97.
 * Counters live in the per-connection session and a per-client-id table; nothing touches a
 * file on these paths.
 *
 * Build: cc -O2 -Wall -Wextra -shared -fPIC -o iot_authz.so iot_authz.c -lcrypto
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

/* mosquitto.h (libmosquitto-dev) is not needed for plugins otherwise; these values are ABI. */
#if defined(__has_include) && __has_include(<mosquitto.h>)
#include <mosquitto.h>
#else
enum {
	MOSQ_ERR_SUCCESS = 0,
	MOSQ_ERR_NOMEM = 1,
	MOSQ_ERR_INVAL = 3,
	MOSQ_ERR_AUTH = 11,
	MOSQ_ERR_ACL_DENIED = 12,
};
#define MOSQ_LOG_INFO (1 << 0)
#define MOSQ_LOG_NOTICE (1 << 1)
#define MOSQ_LOG_WARNING (1 << 2)
#define MOSQ_LOG_ERR (1 << 3)
#endif
#ifndef MQTT_PROTOCOL_V5
#define MQTT_PROTOCOL_V5 5
#endif

#define ACT_CONNECT 1u
#define ACT_PUBLISH 2u
#define ACT_RECEIVE 4u
#define ACT_SUBSCRIBE 8u
#define ACT_RETAIN 16u

#define MAX_LINE 65536
#define BUCKETS 4096
#define ACL_RELOAD_NS 100000000L
#define NS_PER_S 1000000000LL
/* MQTT 5 CONNACK reason code and MQTT 3.1.1 CONNACK return code for a refused CONNECT. */
#define CONNACK_V5_QUOTA_EXCEEDED 0x97
#define CONNACK_V311_SERVER_UNAVAILABLE 3
#define PLACEHOLDER_CLIENT_ID '\x01'

struct rule {
	struct rule *next;
	char *pattern;
	unsigned mask;
	char effect; /* 'A' or 'D' */
	char cond;   /* '-', 'A' or 'N' */
};

struct thing {
	struct thing *next;
	char *name;
};

struct principal {
	struct principal *next;
	struct thing *things;
	struct rule *rules;
	struct rule *rules_tail;
	char *cert_id;
	char *common_name;
	char der_sha256[65];
};

struct table {
	char *arn_prefix;
	struct principal *buckets[BUCKETS];
};

struct session {
	struct session *next;
	struct mosquitto *client;
	char *client_id;
	char *cert_id;
	char *ip_address;
	const char *kick_reason; /* set => disconnect on the next tick */
	char **filters;          /* topic filters subscribed on this connection */
	unsigned filter_count;
	unsigned filter_capacity;
	long long publish_tat_ns; /* publish rate: theoretical arrival time (GCRA) */
	bool publish_throttled;   /* logged once per throttled burst */
	char der_sha256[65];
	char session_id[37];
	bool reported; /* disconnected event already published; after disconnect: dormant */
	bool trusted;  /* loopback listener: no certificate, no policy, no presence */
};

struct state {
	mosquitto_plugin_id_t *id;
	char *table_path;
	struct table *table;
	dev_t table_dev;
	ino_t table_ino;
	off_t table_size;
	struct timespec table_mtime;
	bool table_seen;
	long long last_check_ns;
	unsigned long long version_counter;
	bool kicks_pending;
	struct session *sessions[BUCKETS];
	/* Quotas; an interval or limit of 0 means off. */
	long long connect_interval_ns;
	long long publish_interval_ns;
	long long publish_burst_ns; /* tolerance beyond one interval: (burst - 1) intervals */
	unsigned max_subscriptions;
	struct connect_slot *connects[BUCKETS];
	long long connects_swept_ns;
};

/* Earliest time the next CONNECT with this client id is accepted. */
struct connect_slot {
	struct connect_slot *next;
	long long not_before_ns;
	char client_id[];
};

/* ---------- small helpers ---------- */

static long long monotonic_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static unsigned long long realtime_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000ULL;
}

static unsigned hash_string(const char *s)
{
	unsigned h = 2166136261u;
	for(; *s; s++){
		h = (h ^ (unsigned char)*s) * 16777619u;
	}
	return h % BUCKETS;
}

static unsigned hash_pointer(const void *p)
{
	uintptr_t v = (uintptr_t)p;
	v ^= v >> 17;
	v *= 0x9E3779B1u;
	return (unsigned)(v >> 7) % BUCKETS;
}

static int hex_value(char c)
{
	if(c >= '0' && c <= '9') return c - '0';
	if(c >= 'a' && c <= 'f') return c - 'a' + 10;
	if(c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

/* Decode a %XX-escaped field into a new string; NULL on malformed input or allocation failure. */
static char *unescape(const char *field)
{
	size_t len = strlen(field);
	char *out = malloc(len + 1);
	size_t j = 0;
	if(!out) return NULL;
	for(size_t i = 0; i < len; i++){
		if(field[i] == '%'){
			int hi, lo;
			if(i + 2 >= len){ free(out); return NULL; }
			hi = hex_value(field[i + 1]);
			lo = hex_value(field[i + 2]);
			if(hi < 0 || lo < 0 || (hi == 0 && lo == 0)){ free(out); return NULL; }
			out[j++] = (char)(hi * 16 + lo);
			i += 2;
		}else{
			out[j++] = field[i];
		}
	}
	out[j] = '\0';
	return out;
}

/* ---------- table ---------- */

static void table_free(struct table *t)
{
	if(!t) return;
	for(unsigned b = 0; b < BUCKETS; b++){
		struct principal *p = t->buckets[b];
		while(p){
			struct principal *pn = p->next;
			for(struct thing *th = p->things; th;){
				struct thing *tn = th->next;
				free(th->name);
				free(th);
				th = tn;
			}
			for(struct rule *r = p->rules; r;){
				struct rule *rn = r->next;
				free(r->pattern);
				free(r);
				r = rn;
			}
			free(p->cert_id);
			free(p->common_name);
			free(p);
			p = pn;
		}
	}
	free(t->arn_prefix);
	free(t);
}

static struct principal *table_find(const struct table *t, const char *der_sha256)
{
	if(!t) return NULL;
	for(struct principal *p = t->buckets[hash_string(der_sha256)]; p; p = p->next){
		if(!strcmp(p->der_sha256, der_sha256)) return p;
	}
	return NULL;
}

/* Split `line` in place into at most `max` space-separated fields; returns the count. */
static int split_fields(char *line, char **fields, int max)
{
	int n = 0;
	char *save = NULL;
	for(char *tok = strtok_r(line, " ", &save); tok && n < max; tok = strtok_r(NULL, " ", &save)){
		fields[n++] = tok;
	}
	return n;
}

static int parse_record(struct table *t, struct principal **current, char **f, int n)
{
	if(!strcmp(f[0], "arn") && n == 2){
		free(t->arn_prefix);
		t->arn_prefix = unescape(f[1]);
		return t->arn_prefix ? 0 : -1;
	}
	if(!strcmp(f[0], "cert") && n == 4){
		struct principal *p;
		if(strlen(f[1]) != 64) return -1;
		p = calloc(1, sizeof(*p));
		if(!p) return -1;
		memcpy(p->der_sha256, f[1], 65);
		for(char *c = p->der_sha256; *c; c++) *c = (char)tolower((unsigned char)*c);
		p->cert_id = unescape(f[2]);
		p->common_name = unescape(f[3]);
		{
			unsigned b = hash_string(p->der_sha256);
			p->next = t->buckets[b];
			t->buckets[b] = p;
		}
		*current = p;
		return (p->cert_id && p->common_name) ? 0 : -1;
	}
	if(!strcmp(f[0], "thing") && n == 2 && *current){
		struct thing *th = calloc(1, sizeof(*th));
		if(!th) return -1;
		th->next = (*current)->things;
		(*current)->things = th;
		th->name = unescape(f[1]);
		return th->name ? 0 : -1;
	}
	if(!strcmp(f[0], "rule") && n == 5 && *current){
		struct rule *r;
		char *end = NULL;
		unsigned long mask = strtoul(f[2], &end, 10);
		if(!end || *end || (f[1][0] != 'A' && f[1][0] != 'D')) return -1;
		if(f[3][0] != '-' && f[3][0] != 'A' && f[3][0] != 'N') return -1;
		r = calloc(1, sizeof(*r));
		if(!r) return -1;
		r->effect = f[1][0];
		r->mask = (unsigned)mask;
		r->cond = f[3][0];
		r->pattern = unescape(f[4]);
		/* Keep file order: readers of the table expect rules in the order they were written. */
		if((*current)->rules_tail) (*current)->rules_tail->next = r;
		else (*current)->rules = r;
		(*current)->rules_tail = r;
		return r->pattern ? 0 : -1;
	}
	return -1;
}

static struct table *table_load(const char *path)
{
	FILE *fp = fopen(path, "r");
	struct table *t;
	struct principal *current = NULL;
	char *line;
	int lineno = 0;

	if(!fp){
		mosquitto_log_printf(MOSQ_LOG_WARNING, "iot_authz: cannot open table %s: %s", path, strerror(errno));
		return NULL;
	}
	t = calloc(1, sizeof(*t));
	line = malloc(MAX_LINE);
	if(!t || !line){
		free(t);
		free(line);
		fclose(fp);
		return NULL;
	}
	while(fgets(line, MAX_LINE, fp)){
		char *fields[6];
		size_t len = strlen(line);
		int n;
		lineno++;
		if(len && line[len - 1] == '\n') line[--len] = '\0';
		else if(len == MAX_LINE - 1) goto bad;
		if(lineno == 1){
			if(strcmp(line, "iot-authz 1")) goto bad;
			continue;
		}
		if(!len || line[0] == '#') continue;
		n = split_fields(line, fields, 6);
		if(n < 2 || n > 5 || parse_record(t, &current, fields, n)) goto bad;
	}
	if(lineno == 0 || !t->arn_prefix) goto bad;
	free(line);
	fclose(fp);
	return t;
bad:
	mosquitto_log_printf(MOSQ_LOG_ERR, "iot_authz: malformed table %s at line %d", path, lineno);
	free(line);
	fclose(fp);
	table_free(t);
	return NULL;
}

/* Reload the table if the file changed (a new file is swapped in atomically by rename). */
static bool table_refresh(struct state *st)
{
	struct stat sb;
	struct table *fresh;

	st->last_check_ns = monotonic_ns();
	if(stat(st->table_path, &sb)){
		if(st->table){
			mosquitto_log_printf(MOSQ_LOG_WARNING, "iot_authz: table %s vanished, refusing everyone", st->table_path);
			table_free(st->table);
			st->table = NULL;
			st->table_seen = false;
			return true;
		}
		return false;
	}
	if(st->table_seen && sb.st_dev == st->table_dev && sb.st_ino == st->table_ino
			&& sb.st_size == st->table_size && sb.st_mtim.tv_sec == st->table_mtime.tv_sec
			&& sb.st_mtim.tv_nsec == st->table_mtime.tv_nsec){
		return false;
	}
	fresh = table_load(st->table_path);
	if(!fresh) return false; /* keep the previous table; the error is logged */
	table_free(st->table);
	st->table = fresh;
	st->table_seen = true;
	st->table_dev = sb.st_dev;
	st->table_ino = sb.st_ino;
	st->table_size = sb.st_size;
	st->table_mtime = sb.st_mtim;
	return true;
}

/* ---------- policy evaluation ---------- */

static size_t utf8_char_len(const char *s)
{
	size_t n = 1;
	while(s[n] && ((unsigned char)s[n] & 0xC0) == 0x80) n++;
	return n;
}

/* IAM-style glob: '*' any run, '?' one character, '\' quotes, 0x01 the client id literally. */
static bool glob_match(const char *p, const char *s, const char *client_id)
{
	const char *star_p = NULL, *star_s = NULL;
	size_t id_len = strlen(client_id);

	while(*s){
		if(*p == '*'){
			star_p = ++p;
			star_s = s;
			continue;
		}
		if(*p == '?'){
			p++;
			s += utf8_char_len(s);
			continue;
		}
		if(*p == PLACEHOLDER_CLIENT_ID){
			if(!strncmp(s, client_id, id_len)){
				p++;
				s += id_len;
				continue;
			}
		}else if(*p == '\\' && p[1]){
			if(p[1] == *s){
				p += 2;
				s++;
				continue;
			}
		}else if(*p && *p == *s){
			p++;
			s++;
			continue;
		}
		if(!star_p) return false;
		p = star_p;
		s = ++star_s;
	}
	while(*p == '*' || (*p == PLACEHOLDER_CLIENT_ID && id_len == 0)) p++;
	return *p == '\0';
}

static bool thing_attached(const struct principal *pr, const char *client_id)
{
	for(const struct thing *th = pr->things; th; th = th->next){
		if(!strcmp(th->name, client_id)) return true;
	}
	return false;
}

/* Explicit deny wins, then any allow, else the default deny. */
static bool policy_allows(const struct table *t, const struct principal *pr, unsigned action,
		const char *type, const char *name, const char *client_id)
{
	bool attached = thing_attached(pr, client_id);
	bool allowed = false;
	size_t len = strlen(t->arn_prefix) + strlen(type) + 1 + strlen(name) + 1;
	char *arn = malloc(len);

	if(!arn) return false;
	snprintf(arn, len, "%s%s/%s", t->arn_prefix, type, name);
	for(const struct rule *r = pr->rules; r; r = r->next){
		if(!(r->mask & action)) continue;
		if(r->cond == 'A' && !attached) continue;
		if(r->cond == 'N' && attached) continue;
		if(!glob_match(r->pattern, arn, client_id)) continue;
		if(r->effect == 'D'){
			allowed = false;
			break;
		}
		allowed = true;
	}
	free(arn);
	return allowed;
}

/* ---------- sessions and presence ---------- */

static struct session *session_find(struct state *st, const struct mosquitto *client)
{
	for(struct session *s = st->sessions[hash_pointer(client)]; s; s = s->next){
		if(s->client == client) return s;
	}
	return NULL;
}

static void session_free(struct session *s)
{
	for(unsigned i = 0; i < s->filter_count; i++) free(s->filters[i]);
	free(s->filters);
	free(s->client_id);
	free(s->cert_id);
	free(s->ip_address);
	free(s);
}

static void session_remove(struct state *st, struct session *target)
{
	struct session **link = &st->sessions[hash_pointer(target->client)];
	while(*link && *link != target) link = &(*link)->next;
	if(*link) *link = target->next;
	session_free(target);
}

static bool json_string(char *out, size_t cap, size_t *pos, const char *value);

/* Append `"key":"value"` (JSON-escaped, comma first unless at the start); false when it
 * does not fit in `cap`, so that no truncated event is ever published. */
static bool json_field(char *out, size_t cap, size_t *pos, const char *key, const char *value)
{
	int n;
	if(*pos >= cap) return false;
	n = snprintf(out + *pos, cap - *pos, "%s\"%s\":", *pos > 1 ? "," : "", key);
	if(n < 0 || (size_t)n >= cap - *pos) return false;
	*pos += (size_t)n;
	return json_string(out, cap, pos, value);
}

/* Append `"value"`, JSON-escaped; false when it does not fit in `cap`. */
static bool json_string(char *out, size_t cap, size_t *pos, const char *value)
{
	if(*pos + 2 >= cap) return false;
	out[(*pos)++] = '"';
	for(const unsigned char *c = (const unsigned char *)value; *c; c++){
		if(*pos + 8 >= cap) return false;
		if(*c == '"' || *c == '\\'){
			out[(*pos)++] = '\\';
			out[(*pos)++] = (char)*c;
		}else if(*c < 0x20){
			*pos += (size_t)snprintf(out + *pos, cap - *pos, "\\u%04x", *c);
		}else{
			out[(*pos)++] = (char)*c;
		}
	}
	out[(*pos)++] = '"';
	out[*pos] = '\0';
	return true;
}

/* Versions increase per client id across broker restarts: they follow the wall clock. */
static unsigned long long next_version(struct state *st)
{
	unsigned long long now = realtime_us();
	st->version_counter = now > st->version_counter ? now : st->version_counter + 1;
	return st->version_counter;
}

static void publish_presence(struct state *st, const struct session *s, bool connected,
		const char *reason)
{
	/* Escaping grows a byte to at most 6 ("\\u00XX"); the fixed parts need far less than 1 KiB,
	 * of which RESERVE is kept back for the numbers and flags. */
	enum { RESERVE = 128 };
	size_t id_len = strlen(s->client_id);
	size_t size = 6 * (id_len + strlen(s->cert_id) + strlen(s->ip_address)) + 1024;
	size_t topic_size = id_len + 64;
	char *payload = malloc(size);
	char *topic = malloc(topic_size);
	size_t pos = 1;
	const size_t cap = size - RESERVE;
	struct timespec ts;
	unsigned long long now_ms;
	bool fits;

	if(!payload || !topic){
		free(payload);
		free(topic);
		return;
	}

	clock_gettime(CLOCK_REALTIME, &ts);
	now_ms = (unsigned long long)ts.tv_sec * 1000ULL + (unsigned long long)ts.tv_nsec / 1000000ULL;
	payload[0] = '{';
	payload[1] = '\0';
	fits = json_field(payload, cap, &pos, "clientId", s->client_id);
	pos += (size_t)snprintf(payload + pos, size - pos, ",\"timestamp\":%llu", now_ms);
	fits = fits && json_field(payload, cap, &pos, "eventType", connected ? "connected" : "disconnected")
		&& json_field(payload, cap, &pos, "sessionIdentifier", s->session_id)
		&& json_field(payload, cap, &pos, "principalIdentifier", s->cert_id)
		&& json_field(payload, cap, &pos, "ipAddress", s->ip_address);
	if(fits && !connected){
		pos += (size_t)snprintf(payload + pos, size - pos, ",\"clientInitiatedDisconnect\":%s",
				!strcmp(reason, "CLIENT_INITIATED_DISCONNECT") ? "true" : "false");
		fits = json_field(payload, cap, &pos, "disconnectReason", reason);
	}
	if(fits){
		pos += (size_t)snprintf(payload + pos, size - pos, ",\"versionNumber\":%llu}",
				next_version(st));
	}
	if(fits && pos < size
			&& (size_t)snprintf(topic, topic_size, "$aws/events/presence/%s/%s",
				connected ? "connected" : "disconnected", s->client_id) < topic_size){
		mosquitto_broker_publish_copy(NULL, topic, (int)pos, payload, 1, false, NULL);
	}else{
		/* Unreachable with the sizes above; never publish a truncated event. */
		mosquitto_log_printf(MOSQ_LOG_ERR, "iot_authz: presence event did not fit, dropped");
	}
	free(payload);
	free(topic);
}

/* Lifecycle events for subscriptions (developer guide, "Lifecycle events"):
 * $aws/events/subscriptions/subscribed|unsubscribed/{clientId}. AWS lists every filter of
 * one SUBSCRIBE or UNSUBSCRIBE packet in `topics`; mosquitto asks a plugin about one filter
 * at a time, so each event here names one filter. */
static void publish_subscription(struct state *st, const struct session *s, bool subscribed,
		const char *filter)
{
	enum { RESERVE = 128 };
	size_t id_len = strlen(s->client_id);
	size_t size = 6 * (id_len + strlen(s->cert_id) + strlen(filter)) + 1024;
	size_t topic_size = id_len + 64;
	char *payload = malloc(size);
	char *topic = malloc(topic_size);
	size_t pos = 1;
	const size_t cap = size - RESERVE;
	const char *kind = subscribed ? "subscribed" : "unsubscribed";
	struct timespec ts;
	unsigned long long now_ms;
	bool fits;

	(void)st;
	if(!payload || !topic){
		free(payload);
		free(topic);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	now_ms = (unsigned long long)ts.tv_sec * 1000ULL + (unsigned long long)ts.tv_nsec / 1000000ULL;
	payload[0] = '{';
	payload[1] = '\0';
	fits = json_field(payload, cap, &pos, "clientId", s->client_id);
	pos += (size_t)snprintf(payload + pos, size - pos, ",\"timestamp\":%llu", now_ms);
	fits = fits && json_field(payload, cap, &pos, "eventType", kind)
		&& json_field(payload, cap, &pos, "sessionIdentifier", s->session_id)
		&& json_field(payload, cap, &pos, "principalIdentifier", s->cert_id);
	if(fits){
		pos += (size_t)snprintf(payload + pos, size - pos, ",\"topics\":[");
		fits = json_string(payload, cap, &pos, filter);
	}
	if(fits){
		pos += (size_t)snprintf(payload + pos, size - pos, "]}");
	}
	if(fits && pos < size
			&& (size_t)snprintf(topic, topic_size, "$aws/events/subscriptions/%s/%s", kind,
				s->client_id) < topic_size){
		mosquitto_broker_publish_copy(NULL, topic, (int)pos, payload, 1, false, NULL);
	}else{
		mosquitto_log_printf(MOSQ_LOG_ERR, "iot_authz: subscription event did not fit, dropped");
	}
	free(payload);
	free(topic);
}

static void new_session_id(char out[37])
{
	unsigned char b[16];
	if(RAND_bytes(b, sizeof(b)) != 1){
		unsigned long long v = realtime_us();
		for(size_t i = 0; i < sizeof(b); i++) b[i] = (unsigned char)(v >> ((i % 8) * 8)) ^ (unsigned char)rand();
	}
	b[6] = (unsigned char)((b[6] & 0x0F) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3F) | 0x80);
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
			b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

/* Internal to the broker but exported by it; weak so the plugin still loads without them. */
extern int mosquitto__get_state(const struct mosquitto *mosq) __attribute__((weak));
extern int send__connack(struct mosquitto *context, uint8_t ack, uint8_t reason_code,
		const void *properties) __attribute__((weak));

/* mosquitto 2.0.11 passes no reason to MOSQ_EVT_DISCONNECT (always -1), so read the
 * connection state instead: values of enum mosquitto_client_state in 2.0.x. */
#define STATE_DISCONNECTING 2
#define STATE_ACTIVE 3
#define STATE_DUPLICATE 17
#define STATE_DISCONNECT_WITH_WILL 18

static const char *disconnect_reason(const struct mosquitto *client)
{
	int state = mosquitto__get_state ? mosquitto__get_state(client) : -1;
	switch(state){
		case STATE_DISCONNECTING:
		case STATE_DISCONNECT_WITH_WILL: return "CLIENT_INITIATED_DISCONNECT";
		case STATE_DUPLICATE: return "DUPLICATE_CLIENTID";
		/* Keep-alive expiry and socket loss look the same from here. */
		default: return "CONNECTION_LOST";
	}
}

/* ---------- certificate ---------- */

static bool client_has_certificate(struct mosquitto *client)
{
	X509 *cert = mosquitto_client_certificate(client);
	if(!cert) return false;
	X509_free(cert);
	return true;
}

static bool certificate_identity(struct mosquitto *client, char der_sha256[65], char *cn, size_t cn_cap)
{
	X509 *cert = mosquitto_client_certificate(client);
	unsigned char *der = NULL;
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned digest_len = 0;
	int der_len;
	bool ok = false;

	if(!cert) return false;
	der_len = i2d_X509(cert, &der);
	if(der_len > 0 && EVP_Digest(der, (size_t)der_len, digest, &digest_len, EVP_sha256(), NULL) == 1
			&& digest_len == 32){
		for(unsigned i = 0; i < 32; i++) snprintf(der_sha256 + 2 * i, 3, "%02x", digest[i]);
		cn[0] = '\0';
		X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, (int)cn_cap);
		ok = true;
	}
	OPENSSL_free(der);
	X509_free(cert);
	return ok;
}

/* ---------- quotas ---------- */

static bool filter_held(const struct session *s, const char *filter, unsigned *index)
{
	for(unsigned i = 0; i < s->filter_count; i++){
		if(!strcmp(s->filters[i], filter)){
			if(index) *index = i;
			return true;
		}
	}
	return false;
}

/* Record a new subscription; false when the quota is full (or memory is short). */
static bool filter_add(const struct state *st, struct session *s, const char *filter)
{
	char *copy;
	if(filter_held(s, filter, NULL)) return true; /* replaces the held one: no new slot */
	if(s->filter_count >= st->max_subscriptions) return false;
	if(s->filter_count == s->filter_capacity){
		unsigned grown = s->filter_capacity ? s->filter_capacity * 2 : 8;
		char **bigger = realloc(s->filters, grown * sizeof(*bigger));
		if(!bigger) return false;
		s->filters = bigger;
		s->filter_capacity = grown;
	}
	copy = strdup(filter);
	if(!copy) return false;
	s->filters[s->filter_count++] = copy;
	return true;
}

static void filter_remove(struct session *s, const char *filter)
{
	unsigned i;
	if(!filter_held(s, filter, &i)) return;
	free(s->filters[i]);
	s->filters[i] = s->filters[--s->filter_count];
}

/* One CONNECT per interval per client id; a refused CONNECT does not push the next one back. */
static bool connect_allowed(struct state *st, const char *client_id, long long now)
{
	unsigned b = hash_string(client_id);
	struct connect_slot *slot;
	size_t len;

	for(slot = st->connects[b]; slot; slot = slot->next){
		if(!strcmp(slot->client_id, client_id)) break;
	}
	if(slot){
		if(now < slot->not_before_ns) return false;
		slot->not_before_ns = now + st->connect_interval_ns;
		return true;
	}
	len = strlen(client_id) + 1;
	slot = malloc(sizeof(*slot) + len);
	if(!slot) return true; /* fail open: the quota is a courtesy, not a security control */
	memcpy(slot->client_id, client_id, len);
	slot->not_before_ns = now + st->connect_interval_ns;
	slot->next = st->connects[b];
	st->connects[b] = slot;
	return true;
}

/* Forget client ids whose next CONNECT would be accepted anyway. */
static void connects_sweep(struct state *st, long long now, bool all)
{
	for(unsigned b = 0; b < BUCKETS; b++){
		struct connect_slot **link = &st->connects[b];
		while(*link){
			struct connect_slot *slot = *link;
			if(all || slot->not_before_ns <= now){
				*link = slot->next;
				free(slot);
			}else{
				link = &slot->next;
			}
		}
	}
	st->connects_swept_ns = now;
}

/* GCRA: a burst of one second's worth, then one message per interval. */
static bool publish_allowed(const struct state *st, struct session *s, long long now)
{
	long long tat = s->publish_tat_ns > now ? s->publish_tat_ns : now;
	if(tat - now > st->publish_burst_ns) return false;
	s->publish_tat_ns = tat + st->publish_interval_ns;
	return true;
}

/* ---------- callbacks ---------- */

static void schedule_kick(struct state *st, struct session *s, const char *reason)
{
	if(!s->kick_reason && !s->reported){
		s->kick_reason = reason;
		st->kicks_pending = true;
	}
}

/* Reload the table if it changed; certificates that left it lose their connections. */
static void refresh(struct state *st)
{
	if(!table_refresh(st)) return;
	for(unsigned b = 0; b < BUCKETS; b++){
		for(struct session *s = st->sessions[b]; s; s = s->next){
			if(!s->trusted && !table_find(st->table, s->der_sha256)) schedule_kick(st, s, "AUTH_ERROR");
		}
	}
}

static struct session *session_add(struct state *st, struct mosquitto *client, const char *client_id)
{
	struct session *s = session_find(st, client);
	unsigned b = hash_pointer(client);

	if(s) session_remove(st, s);
	s = calloc(1, sizeof(*s));
	if(!s) return NULL;
	s->client = client;
	s->next = st->sessions[b];
	st->sessions[b] = s;
	s->client_id = strdup(client_id);
	if(!s->client_id){
		session_remove(st, s);
		return NULL;
	}
	return s;
}

static int on_basic_auth(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_basic_auth *ev = event_data;
	struct state *st = userdata;
	const char *client_id = mosquitto_client_id(ev->client);
	const char *address = mosquitto_client_address(ev->client);
	struct principal *pr;
	struct session *s;
	char der_sha256[65];
	char cn[256];
	(void)event;

	if(!client_id) client_id = "";
	if(!client_has_certificate(ev->client)){
		/* Only the loopback listener lets clients in without a certificate: the stand-in's
		 * own glue and tools, trusted with everything (require_certificate guards TLS). */
		s = session_add(st, ev->client, client_id);
		if(!s) return MOSQ_ERR_NOMEM;
		s->trusted = true;
		return MOSQ_ERR_SUCCESS;
	}
	if(!certificate_identity(ev->client, der_sha256, cn, sizeof(cn))) return MOSQ_ERR_AUTH;
	refresh(st);
	pr = table_find(st->table, der_sha256);
	if(!pr){
		mosquitto_log_printf(MOSQ_LOG_NOTICE, "iot_authz: refused %s: certificate %s is not registered and ACTIVE", client_id, der_sha256);
		return MOSQ_ERR_AUTH;
	}
	/* Before anything else: a refused CONNECT must not take over the live connection. */
	if(st->connect_interval_ns && !connect_allowed(st, client_id, monotonic_ns())){
		bool v5 = mosquitto_client_protocol_version(ev->client) == MQTT_PROTOCOL_V5;
		mosquitto_log_printf(MOSQ_LOG_NOTICE, "iot_authz: refused %s: CONNECT rate per client id exceeded", client_id);
		if(!send__connack) return MOSQ_ERR_AUTH; /* "not authorized" is all the API offers */
		send__connack(ev->client, 0, v5 ? CONNACK_V5_QUOTA_EXCEEDED : CONNACK_V311_SERVER_UNAVAILABLE, NULL);
		/* Any error but MOSQ_ERR_AUTH closes the connection without a second CONNACK. */
		return MOSQ_ERR_INVAL;
	}
	if(!policy_allows(st->table, pr, ACT_CONNECT, "client", client_id, client_id)){
		mosquitto_log_printf(MOSQ_LOG_NOTICE, "iot_authz: refused %s: iot:Connect not allowed for certificate %s", client_id, pr->cert_id);
		return MOSQ_ERR_AUTH;
	}
	mosquitto_set_username(ev->client, cn[0] ? cn : pr->cert_id);

	/* A live connection with the same client id is about to be taken over: report it first,
	 * so that its disconnected event precedes this connection's connected event. A dormant
	 * session of that id is about to be resumed by this connection: forget it. */
	for(unsigned b = 0; b < BUCKETS; b++){
		struct session **link = &st->sessions[b];
		while(*link){
			struct session *old = *link;
			if(old->client == ev->client || old->trusted || strcmp(old->client_id, client_id)){
				link = &old->next;
			}else if(old->reported){
				*link = old->next;
				old->next = NULL;
				session_free(old);
			}else{
				publish_presence(st, old, false, "DUPLICATE_CLIENTID");
				old->reported = true;
				link = &old->next;
			}
		}
	}
	s = session_add(st, ev->client, client_id);
	if(!s) return MOSQ_ERR_NOMEM;
	s->cert_id = strdup(pr->cert_id);
	s->ip_address = strdup(address ? address : "");
	if(!s->cert_id || !s->ip_address){
		session_remove(st, s);
		return MOSQ_ERR_NOMEM;
	}
	memcpy(s->der_sha256, der_sha256, sizeof(s->der_sha256));
	new_session_id(s->session_id);
	publish_presence(st, s, true, NULL);
	return MOSQ_ERR_SUCCESS;
}

static int on_acl_check(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_acl_check *ev = event_data;
	struct state *st = userdata;
	struct session *s = session_find(st, ev->client);
	struct principal *pr;
	unsigned action;
	const char *type = "topic";
	long long now;
	(void)event;

	if(!s){
		/* Sessions restored from the persistence file after a restart have no certificate
		 * here until their client reconnects. Queue messages for them: mosquitto re-checks
		 * every queued message (READ) against the reconnected, authenticated client. */
		return ev->access == MOSQ_ACL_READ ? MOSQ_ERR_SUCCESS : MOSQ_ERR_ACL_DENIED;
	}
	if(s->trusted) return MOSQ_ERR_SUCCESS;
	if(ev->access == MOSQ_ACL_UNSUBSCRIBE){
		filter_remove(s, ev->topic);
		publish_subscription(st, s, false, ev->topic);
		return MOSQ_ERR_SUCCESS;
	}
	now = monotonic_ns();
	if(now - st->last_check_ns > ACL_RELOAD_NS) refresh(st);
	pr = table_find(st->table, s->der_sha256);
	if(!pr){
		schedule_kick(st, s, "AUTH_ERROR");
		return MOSQ_ERR_ACL_DENIED;
	}
	switch(ev->access){
		case MOSQ_ACL_WRITE: action = ACT_PUBLISH; break;
		case MOSQ_ACL_READ: action = ACT_RECEIVE; break;
		case MOSQ_ACL_SUBSCRIBE: action = ACT_SUBSCRIBE; type = "topicfilter"; break;
		default: return MOSQ_ERR_ACL_DENIED;
	}
	if(policy_allows(st->table, pr, action, type, ev->topic, s->client_id)
			&& (!(action == ACT_PUBLISH && ev->retain)
				|| policy_allows(st->table, pr, ACT_RETAIN, type, ev->topic, s->client_id))){
		if(action == ACT_SUBSCRIBE && st->max_subscriptions && !filter_add(st, s, ev->topic)){
			mosquitto_log_printf(MOSQ_LOG_NOTICE, "iot_authz: %s may not subscribe to %s: %u subscriptions per connection", s->client_id, ev->topic, st->max_subscriptions);
			return MOSQ_ERR_ACL_DENIED;
		}
		if(action == ACT_SUBSCRIBE) publish_subscription(st, s, true, ev->topic);
		/* Only PUBLISH packets of a live connection count: mosquitto also checks the will
		 * message at CONNECT and when publishing it after the disconnect. */
		if(action == ACT_PUBLISH && st->publish_interval_ns && !s->reported
				&& (!mosquitto__get_state || mosquitto__get_state(ev->client) == STATE_ACTIVE)){
			if(!publish_allowed(st, s, now)){
				if(!s->publish_throttled){
					mosquitto_log_printf(MOSQ_LOG_NOTICE, "iot_authz: %s exceeds its publish rate, discarding", s->client_id);
					s->publish_throttled = true;
				}
				return MOSQ_ERR_ACL_DENIED; /* dropped; no kick, unlike a policy denial */
			}
			s->publish_throttled = false;
		}
		return MOSQ_ERR_SUCCESS;
	}
	if(action == ACT_PUBLISH){
		mosquitto_log_printf(MOSQ_LOG_NOTICE, "iot_authz: %s may not publish to %s", s->client_id, ev->topic);
		/* AWS IoT drops MQTT 3.1.1 clients that publish outside their policy; MQTT 5 clients
		 * get PUBACK 0x87 from mosquitto and stay. The kick waits for the next tick: mosquitto
		 * is still handling this client's PUBLISH. */
		if(mosquitto_client_protocol_version(ev->client) != MQTT_PROTOCOL_V5){
			schedule_kick(st, s, "FORBIDDEN_ACCESS");
		}
	}
	return MOSQ_ERR_ACL_DENIED;
}

static int on_disconnect(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_disconnect *ev = event_data;
	struct state *st = userdata;
	struct session *s = session_find(st, ev->client);
	(void)event;

	if(!s) return MOSQ_ERR_SUCCESS;
	if(!s->trusted && !s->reported) publish_presence(st, s, false, disconnect_reason(ev->client));
	s->reported = true;
	/* A persistent session outlives its connection and messages are queued for it through
	 * ACL checks on this client, so keep it (dormant) until the client id connects again. */
	if(s->trusted || (mosquitto_client_protocol_version(ev->client) != MQTT_PROTOCOL_V5
			&& mosquitto_client_clean_session(ev->client))){
		session_remove(st, s);
	}
	return MOSQ_ERR_SUCCESS;
}

/* Ticks come from the main loop (about every 100 ms), outside any client's packet handling,
 * which makes them the safe place to disconnect clients. mosquitto 2.0.11 only delivers them
 * to plugins loaded globally (per_listener_settings false). */
static int on_tick(int event, void *event_data, void *userdata)
{
	struct state *st = userdata;
	char **client_ids = NULL;
	size_t count = 0, capacity = 0;
	(void)event;
	(void)event_data;

	long long now = monotonic_ns();
	if(now - st->last_check_ns > ACL_RELOAD_NS) refresh(st);
	if(st->connect_interval_ns && now - st->connects_swept_ns > NS_PER_S) connects_sweep(st, now, false);
	if(!st->kicks_pending) return MOSQ_ERR_SUCCESS;
	st->kicks_pending = false;
	/* Collect first: each kick runs on_disconnect, which frees sessions. */
	for(unsigned b = 0; b < BUCKETS; b++){
		for(struct session *s = st->sessions[b]; s; s = s->next){
			if(!s->kick_reason || s->reported) continue;
			if(count == capacity){
				size_t grown = capacity ? capacity * 2 : 16;
				char **bigger = realloc(client_ids, grown * sizeof(*bigger));
				if(!bigger){
					st->kicks_pending = true; /* retry the rest on the next tick */
					goto kick;
				}
				client_ids = bigger;
				capacity = grown;
			}
			client_ids[count] = strdup(s->client_id);
			if(!client_ids[count]){
				st->kicks_pending = true;
				goto kick;
			}
			count++;
			publish_presence(st, s, false, s->kick_reason);
			s->reported = true;
			mosquitto_log_printf(MOSQ_LOG_NOTICE, "iot_authz: disconnecting %s (%s)", s->client_id, s->kick_reason);
		}
	}
kick:
	for(size_t i = 0; i < count; i++){
		mosquitto_kick_client_by_clientid(client_ids[i], false);
		free(client_ids[i]);
	}
	free(client_ids);
	return MOSQ_ERR_SUCCESS;
}

/* ---------- plugin entry points ---------- */

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
	for(int i = 0; i < supported_version_count; i++){
		if(supported_versions[i] == 5) return 5;
	}
	return -1;
}

/* A rate in events per second, 0 for off; false when malformed. */
static bool parse_rate(const char *key, const char *value, double *rate)
{
	char *end = NULL;
	errno = 0;
	*rate = strtod(value, &end);
	if(errno || end == value || *end || !(*rate >= 0.0 && *rate <= 1e6)){
		mosquitto_log_printf(MOSQ_LOG_ERR, "iot_authz: plugin_opt_%s must be a number of events per second from 0 (off) to 1e6, not %s", key, value);
		return false;
	}
	return true;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata,
		struct mosquitto_opt *options, int option_count)
{
	struct state *st;
	const char *table_path = NULL;
	double connect_rate = 0.0, publish_rate = 0.0, max_subscriptions = 0.0;

	for(int i = 0; i < option_count; i++){
		const char *key = options[i].key, *value = options[i].value;
		if(!strcmp(key, "table")) table_path = value;
		else if(!strcmp(key, "connect_rate") && !parse_rate(key, value, &connect_rate)) return MOSQ_ERR_INVAL;
		else if(!strcmp(key, "publish_rate") && !parse_rate(key, value, &publish_rate)) return MOSQ_ERR_INVAL;
		else if(!strcmp(key, "max_subscriptions")
				&& (!parse_rate(key, value, &max_subscriptions) || max_subscriptions != (unsigned)max_subscriptions)){
			return MOSQ_ERR_INVAL;
		}
	}
	if(!table_path){
		mosquitto_log_printf(MOSQ_LOG_ERR, "iot_authz: plugin_opt_table is required");
		return MOSQ_ERR_INVAL;
	}
	st = calloc(1, sizeof(*st));
	if(!st) return MOSQ_ERR_NOMEM;
	if(connect_rate > 0.0) st->connect_interval_ns = (long long)((double)NS_PER_S / connect_rate);
	if(publish_rate > 0.0){
		double burst = publish_rate < 1.0 ? 1.0 : (double)(long long)publish_rate;
		st->publish_interval_ns = (long long)((double)NS_PER_S / publish_rate);
		st->publish_burst_ns = (long long)((burst - 1.0) * (double)st->publish_interval_ns);
	}
	st->max_subscriptions = (unsigned)max_subscriptions;
	st->id = identifier;
	st->table_path = strdup(table_path);
	if(!st->table_path){
		free(st);
		return MOSQ_ERR_NOMEM;
	}
	table_refresh(st);
	*userdata = st;
	if(mosquitto_callback_register(identifier, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL, st)
			|| mosquitto_callback_register(identifier, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL, st)
			|| mosquitto_callback_register(identifier, MOSQ_EVT_DISCONNECT, on_disconnect, NULL, st)
			|| mosquitto_callback_register(identifier, MOSQ_EVT_TICK, on_tick, NULL, st)){
		/* mosquitto refuses to start when a plugin fails to initialise. */
		mosquitto_log_printf(MOSQ_LOG_ERR, "iot_authz: cannot register callbacks");
		return MOSQ_ERR_INVAL;
	}
	mosquitto_log_printf(MOSQ_LOG_INFO, "iot_authz: loaded, table %s, quotas: %g CONNECT/s per client id, %u subscriptions and %g PUBLISH/s per connection (0: off)",
			table_path, connect_rate, st->max_subscriptions, publish_rate);
	return MOSQ_ERR_SUCCESS;
}

int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *options, int option_count)
{
	struct state *st = userdata;
	(void)options;
	(void)option_count;

	if(!st) return MOSQ_ERR_SUCCESS;
	mosquitto_callback_unregister(st->id, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL);
	mosquitto_callback_unregister(st->id, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL);
	mosquitto_callback_unregister(st->id, MOSQ_EVT_DISCONNECT, on_disconnect, NULL);
	mosquitto_callback_unregister(st->id, MOSQ_EVT_TICK, on_tick, NULL);
	for(unsigned b = 0; b < BUCKETS; b++){
		while(st->sessions[b]) session_remove(st, st->sessions[b]);
	}
	connects_sweep(st, 0, true);
	table_free(st->table);
	free(st->table_path);
	free(st);
	return MOSQ_ERR_SUCCESS;
}
