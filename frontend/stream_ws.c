/* WebSocket (RFC 6455) for the streaming server, with the kubelet channel
 * framing (PROTOCOLS.md 3, 4.2): every message is one channel byte and its
 * payload, in a binary frame, or for the base64 protocols a text frame of
 * '0' + channel and the payload in standard base64.
 *
 * Client frames must be masked; a message may come in fragments, assembled
 * up to STREAM_FRAME_MAX. Pings get pongs, a close gets a close back. Any
 * violation closes this connection only (1002 or 1009 first when we can). */
#include "autoconfig.h"

#include <event2/buffer.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <string.h>

#include "common/log.h"
#include "frontend/stream.h"

enum {
	OP_CONT = 0x0,
	OP_TEXT = 0x1,
	OP_BINARY = 0x2,
	OP_CLOSE = 0x8,
	OP_PING = 0x9,
	OP_PONG = 0xa,
};

#define CLOSE_NORMAL 1000
#define CLOSE_PROTOCOL 1002
#define CLOSE_BAD_DATA 1007
#define CLOSE_TOO_BIG 1009

struct ws_state {
	struct evbuffer *msg; /* fragments of the message being received */
	int msg_opcode;       /* -1: no message in progress */
	bool close_sent;
};

void ws_accept_key(const char *key, char out[29])
{
	static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
	uint8_t digest[SHA_DIGEST_LENGTH];
	char buf[128];
	size_t n = (size_t)snprintf(buf, sizeof(buf), "%s%s", key, guid);

	SHA1((const uint8_t *)buf, n < sizeof(buf) ? n : sizeof(buf) - 1, digest);
	EVP_EncodeBlock((uint8_t *)out, digest, sizeof(digest));
}

static void send_frame(struct stream_conn *c, uint8_t opcode, const void *a, size_t alen,
		       const void *b, size_t blen)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	size_t len = alen + blen;
	uint8_t h[10];
	size_t hl;

	h[0] = 0x80 | opcode;
	if (len < 126) {
		h[1] = (uint8_t)len;
		hl = 2;
	} else if (len <= 0xffff) {
		h[1] = 126;
		h[2] = (uint8_t)(len >> 8);
		h[3] = (uint8_t)len;
		hl = 4;
	} else {
		h[1] = 127;
		for (int i = 0; i < 8; i++)
			h[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
		hl = 10;
	}
	evbuffer_add(out, h, hl);
	if (alen)
		evbuffer_add(out, a, alen);
	if (blen)
		evbuffer_add(out, b, blen);
}

void ws_send_message(struct stream_conn *c, uint8_t channel, const void *data, size_t len)
{
	const uint8_t *p = data;

	if (c->ws->close_sent)
		return;
	/* Large outputs go as several messages: each is a whole channel write. */
	do {
		size_t n = len > STREAM_CHUNK ? STREAM_CHUNK : len;
		if (c->base64) {
			char *text = xmalloc(1 + 4 * ((n + 2) / 3) + 1);
			text[0] = (char)('0' + channel);
			int tl = EVP_EncodeBlock((uint8_t *)text + 1, p, (int)n);
			send_frame(c, OP_TEXT, text, 1 + (size_t)tl, NULL, 0);
			free(text);
		} else {
			send_frame(c, OP_BINARY, &channel, 1, p, n);
		}
		p += n;
		len -= n;
	} while (len > 0);
}

static void send_close(struct stream_conn *c, uint16_t code, const char *reason)
{
	uint8_t payload[2] = { (uint8_t)(code >> 8), (uint8_t)code };

	if (c->ws->close_sent)
		return;
	c->ws->close_sent = true;
	send_frame(c, OP_CLOSE, payload, 2, reason, reason ? strlen(reason) : 0);
}

void ws_finish(struct stream_conn *c)
{
	send_close(c, CLOSE_NORMAL, NULL);
}

static void fail(struct stream_conn *c, uint16_t code, const char *why)
{
	log_info("streaming connection from %s: WebSocket protocol error: %s", c->peer, why);
	send_close(c, code, why);
	c->finishing = true;
	bufferevent_disable(c->bev, EV_READ);
	if (stream_conn_pending(c) == 0)
		stream_conn_close(c, NULL);
}

/* Decode standard base64 (padded), in place. -1 if malformed. */
static ssize_t base64_decode(uint8_t *buf, size_t len)
{
	_cleanup_free_ uint8_t *out = NULL;
	int n;

	if (len == 0)
		return 0;
	if (len % 4)
		return -1;
	out = xmalloc(len / 4 * 3 + 1);
	n = EVP_DecodeBlock(out, buf, (int)len);
	if (n < 0)
		return -1;
	/* EVP_DecodeBlock counts padding as zero bytes. */
	if (buf[len - 1] == '=')
		n--;
	if (buf[len - 2] == '=')
		n--;
	memcpy(buf, out, (size_t)n);
	return n;
}

/* The protocol, not the opcode, says how a message is encoded: the kubelet's
 * reader takes text and binary frames alike. */
static void on_message(struct stream_conn *c, uint8_t *data, size_t len)
{
	struct stream_chan *ch;
	uint8_t channel;
	ssize_t n;

	if (len == 0)
		return; /* empty messages are ignored */
	if (c->base64) {
		if (data[0] < '0' || data[0] > '9')
			return; /* not a channel we know */
		channel = (uint8_t)(data[0] - '0');
		n = base64_decode(data + 1, len - 1);
		if (n < 0)
			return fail(c, CLOSE_BAD_DATA, "malformed base64 in a text message");
		len = (size_t)n + 1;
	} else {
		channel = data[0];
	}
	/* v5: [0xff, channel] half-closes that channel. */
	if (c->version >= 5 && channel == 0xff) {
		if (len != 2)
			return fail(c, CLOSE_PROTOCOL, "v5 CLOSE message is not 2 bytes");
		ch = stream_chan_find(c, data[1]);
		if (!ch)
			return fail(c, CLOSE_PROTOCOL, "v5 CLOSE names an unknown channel");
		if (!ch->remote_fin) {
			ch->remote_fin = true;
			c->proto->chan_eof(c, ch);
		}
		return;
	}
	ch = stream_chan_find(c, channel);
	if (!ch || ch->remote_fin || len == 1)
		return; /* unknown channels and empty payloads are ignored */
	c->proto->chan_data(c, ch, data + 1, len - 1);
}

/* One frame from the input, if it is all there: 1 handled, 0 need more, -1 failed. */
static int read_frame(struct stream_conn *c, struct evbuffer *in)
{
	uint8_t h[14];
	size_t have = evbuffer_get_length(in), hl = 2;
	uint64_t len;
	bool fin;
	int opcode;
	uint8_t *frame, *payload;

	if (evbuffer_copyout(in, h, have < sizeof(h) ? have : sizeof(h)) < 2)
		return 0;
	fin = h[0] & 0x80;
	opcode = h[0] & 0x0f;
	if (h[0] & 0x70)
		return fail(c, CLOSE_PROTOCOL, "reserved bits set"), -1;
	if (!(h[1] & 0x80))
		return fail(c, CLOSE_PROTOCOL, "client frame not masked"), -1;
	len = h[1] & 0x7f;
	if (len == 126) {
		if (have < 4)
			return 0;
		len = (uint64_t)h[2] << 8 | h[3];
		hl = 4;
	} else if (len == 127) {
		if (have < 10)
			return 0;
		len = 0;
		for (int i = 0; i < 8; i++)
			len = len << 8 | h[2 + i];
		hl = 10;
	}
	if (opcode >= 0x8 && (!fin || len > 125))
		return fail(c, CLOSE_PROTOCOL, "fragmented or long control frame"), -1;
	if (len > STREAM_FRAME_MAX)
		return fail(c, CLOSE_TOO_BIG, "frame longer than 1 MiB"), -1;
	if (have < hl + 4 + len)
		return 0;
	frame = evbuffer_pullup(in, (ssize_t)(hl + 4 + len));
	payload = frame + hl + 4;
	for (uint64_t i = 0; i < len; i++)
		payload[i] ^= frame[hl + i % 4];
	stream_conn_activity(c);

	switch (opcode) {
	case OP_PING:
		if (!c->ws->close_sent)
			send_frame(c, OP_PONG, payload, (size_t)len, NULL, 0);
		break;
	case OP_PONG:
		break;
	case OP_CLOSE:
		if (len == 1)
			return fail(c, CLOSE_PROTOCOL, "close frame of 1 byte"), -1;
		/* The client is done: answer and close once that is written. */
		send_close(c, CLOSE_NORMAL, NULL);
		c->finishing = true;
		bufferevent_disable(c->bev, EV_READ);
		if (stream_conn_pending(c) == 0)
			stream_conn_close(c, NULL);
		return -1;
	case OP_TEXT:
	case OP_BINARY:
		if (c->ws->msg_opcode >= 0)
			return fail(c, CLOSE_PROTOCOL, "new message inside a fragmented one"), -1;
		if (fin) {
			on_message(c, payload, (size_t)len);
			break;
		}
		c->ws->msg_opcode = opcode;
		evbuffer_add(c->ws->msg, payload, (size_t)len);
		break;
	case OP_CONT:
		if (c->ws->msg_opcode < 0)
			return fail(c, CLOSE_PROTOCOL, "continuation without a message"), -1;
		if (evbuffer_get_length(c->ws->msg) + len > STREAM_FRAME_MAX)
			return fail(c, CLOSE_TOO_BIG, "message longer than 1 MiB"), -1;
		evbuffer_add(c->ws->msg, payload, (size_t)len);
		if (fin) {
			size_t mlen = evbuffer_get_length(c->ws->msg);
			uint8_t *m = mlen ? evbuffer_pullup(c->ws->msg, -1) : NULL;
			c->ws->msg_opcode = -1;
			if (m)
				on_message(c, m, mlen);
			if (!c->closed && c->ws)
				evbuffer_drain(c->ws->msg, mlen);
		}
		break;
	default:
		return fail(c, CLOSE_PROTOCOL, "unknown opcode"), -1;
	}
	if (c->closed)
		return -1;
	evbuffer_drain(in, hl + 4 + (size_t)len);
	return 1;
}

void ws_read(struct stream_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);

	/* PINGs are answered: a client that does not read gets nothing more
	 * parsed until its output drained; on_write() resumes. */
	while (!c->closed && !c->finishing && !c->input_paused &&
	       stream_conn_pending(c) < STREAM_BUF_MAX)
		if (read_frame(c, in) <= 0)
			return;
}

int ws_init(struct stream_conn *c, struct crisp_error *err)
{
	c->ws = xcalloc(1, sizeof(*c->ws));
	c->ws->msg = evbuffer_new();
	c->ws->msg_opcode = -1;
	if (!c->ws->msg) {
		ws_free(c);
		return err_set(err, CRISP_E_INTERNAL, "cannot allocate a WebSocket buffer");
	}
	return 0;
}

void ws_free(struct stream_conn *c)
{
	if (!c->ws)
		return;
	if (c->ws->msg)
		evbuffer_free(c->ws->msg);
	free(c->ws);
	c->ws = NULL;
}
