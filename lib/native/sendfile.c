/*
 * swarm's one native helper: a piece of a shared file sent to a peer's socket by the kernel
 * (sendfile(2)), packet heads between the payloads, without the bytes passing through memory
 * we own. Serving copied every byte twice (file -> our buffer, our buffer -> socket); here the
 * socket takes the page-cache pages themselves.
 *
 * sendPiece(socketFd, fileFd, heads, headBytes, position, length, packetBytes, done, callback)
 *   A piece is `length` payload bytes from file offset `position`, cut into packets of
 *   `packetBytes` (the last may be shorter); before each payload go its `headBytes` from
 *   `heads` (frame prefix + packet header, checksum filled in by the caller). `done` is how many
 *   bytes of that wire stream (heads and payloads) went out before. The work runs on libuv's
 *   thread pool (a file page not in memory is read from disk there, never on the event loop),
 *   and stops when the piece is out, or the socket is full (EAGAIN: the caller waits until it
 *   is writable and calls again with the new `done`), or on an error. callback(err, done, next):
 *   err is null or an errno name ('EPIPE', 'ENODATA' when the file ended early); next, when the
 *   socket was full, is the wire byte at `done` (read here: the caller writes it through Node's
 *   stream, whose callback is the "writable again" Node gives no other way), else -1.
 *
 * Both descriptors are dup()ed before the work is queued and closed after it: the JS side may
 * close the socket or the file at any moment, and a descriptor number freed then could be
 * reused by another connection or file before our thread uses it. With our own duplicates the
 * thread can only ever reach the very socket and file it was given.
 */
#define _GNU_SOURCE
#include <node_api.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <stdbool.h>

#define MAX_HEADS_BYTES 4096

typedef struct {
  napi_async_work work;
  napi_ref callback;
  int sock;
  int file;
  unsigned char heads[MAX_HEADS_BYTES];
  int64_t head_bytes;
  int64_t position;
  int64_t length;
  int64_t packet_bytes;
  int64_t done;
  int err;
  /* stopped at a full socket: the wire byte at `done` (0-255), for the caller's one-byte write; else -1 */
  int next;
} piece_t;

static int64_t packets_of(int64_t length, int64_t packet_bytes) {
  return length == 0 ? 0 : (length + packet_bytes - 1) / packet_bytes;
}

/* Where wire byte p->done is: packet k, `in` bytes into its head + payload; and the stream's length. */
static int64_t locate(const piece_t *p, int64_t *k, int64_t *in) {
  const int64_t slot = p->head_bytes + p->packet_bytes;
  *k = p->done / slot;
  *in = p->done - *k * slot;
  return packets_of(p->length, p->packet_bytes) * p->head_bytes + p->length;
}

/* The piece's wire stream from byte p->done on, until it is out, the socket is full or an error;
   stopped at a full socket, p->next is the byte at p->done (read here, so that the caller's
   one-byte write needs no other thread-pool trip). */
static void execute(napi_env env, void *data) {
  (void)env;
  piece_t *p = (piece_t *)data;
  p->next = -1;
  int64_t k, in;
  for (;;) {
    const int64_t total = locate(p, &k, &in);
    if (p->done >= total) return;
    int64_t plen = p->length - k * p->packet_bytes;
    if (plen > p->packet_bytes) plen = p->packet_bytes;
    ssize_t n;
    if (in < p->head_bytes) {
      // MSG_MORE: the head waits for its payload, one segment, even with Nagle off
      n = send(p->sock, p->heads + k * p->head_bytes + in, (size_t)(p->head_bytes - in), MSG_DONTWAIT | MSG_NOSIGNAL | MSG_MORE);
    } else {
      off_t at = (off_t)(p->position + k * p->packet_bytes + (in - p->head_bytes));
      n = sendfile(p->sock, p->file, &at, (size_t)(plen - (in - p->head_bytes)));
      if (n == 0) {
        p->err = ENODATA; // the file ended before the piece did: it shrank
        return;
      }
    }
    if (n >= 0) {
      p->done += n;
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    p->err = errno;
    return;
  }
  // the socket is full (k, in: where p->done is)
  if (in < p->head_bytes) {
    p->next = p->heads[k * p->head_bytes + in];
    return;
  }
  unsigned char b;
  ssize_t n;
  do n = pread(p->file, &b, 1, (off_t)(p->position + k * p->packet_bytes + (in - p->head_bytes)));
  while (n < 0 && errno == EINTR);
  if (n == 1) p->next = b;
  else p->err = n == 0 ? ENODATA : errno;
}

static const char *errno_name(int e) {
  switch (e) {
    case EPIPE: return "EPIPE";
    case ECONNRESET: return "ECONNRESET";
    case ENODATA: return "ENODATA";
    case EBADF: return "EBADF";
    case EINVAL: return "EINVAL";
    case EIO: return "EIO";
    case ENOTCONN: return "ENOTCONN";
    case ENOMEM: return "ENOMEM";
    case EOVERFLOW: return "EOVERFLOW";
    default: return "EIO";
  }
}

static void complete(napi_env env, napi_status status, void *data) {
  piece_t *p = (piece_t *)data;
  close(p->sock);
  close(p->file);
  napi_value cb, undefined, argv[3];
  napi_get_reference_value(env, p->callback, &cb);
  napi_get_undefined(env, &undefined);
  if (status != napi_ok) p->err = EIO;
  if (p->err) napi_create_string_utf8(env, errno_name(p->err), NAPI_AUTO_LENGTH, &argv[0]);
  else napi_get_null(env, &argv[0]);
  napi_create_int64(env, p->done, &argv[1]);
  napi_create_int32(env, p->err ? -1 : p->next, &argv[2]);
  napi_delete_reference(env, p->callback);
  napi_delete_async_work(env, p->work);
  free(p);
  napi_call_function(env, undefined, cb, 3, argv, NULL);
}


static napi_value fail(napi_env env, const char *msg) {
  napi_throw_error(env, "SWARM_ERR_INTERNAL", msg);
  return NULL;
}

/* Reads the 8 leading arguments into *q (heads pointer in *heads); false (an exception thrown) if bad. */
static bool read_args(napi_env env, napi_value *a, piece_t *q, void **heads) {
  int32_t sock, file;
  size_t heads_len;
  if (napi_get_value_int32(env, a[0], &sock) != napi_ok || napi_get_value_int32(env, a[1], &file) != napi_ok ||
      napi_get_buffer_info(env, a[2], heads, &heads_len) != napi_ok || napi_get_value_int64(env, a[3], &q->head_bytes) != napi_ok ||
      napi_get_value_int64(env, a[4], &q->position) != napi_ok || napi_get_value_int64(env, a[5], &q->length) != napi_ok ||
      napi_get_value_int64(env, a[6], &q->packet_bytes) != napi_ok || napi_get_value_int64(env, a[7], &q->done) != napi_ok) {
    fail(env, "sendPiece: bad argument types");
    return false;
  }
  q->sock = sock;
  q->file = file;
  if (sock < 0 || file < 0 || q->head_bytes <= 0 || q->packet_bytes <= 0 || q->position < 0 || q->length <= 0 || q->done < 0) {
    fail(env, "sendPiece: bad argument values");
    return false;
  }
  const int64_t heads_needed = packets_of(q->length, q->packet_bytes) * q->head_bytes;
  if (heads_needed > MAX_HEADS_BYTES || (int64_t)heads_len < heads_needed) {
    fail(env, "sendPiece: heads missing or too many packets");
    return false;
  }
  if (q->done > heads_needed + q->length) {
    fail(env, "sendPiece: done beyond the piece");
    return false;
  }
  return true;
}

static napi_value SendPiece(napi_env env, napi_callback_info info) {
  size_t argc = 9;
  napi_value a[9];
  if (napi_get_cb_info(env, info, &argc, a, NULL, NULL) != napi_ok || argc != 9) return fail(env, "sendPiece takes 9 arguments");
  napi_valuetype cbt;
  if (napi_typeof(env, a[8], &cbt) != napi_ok || cbt != napi_function) return fail(env, "sendPiece: the last argument is the callback");
  piece_t q;
  memset(&q, 0, sizeof q);
  void *heads;
  if (!read_args(env, a, &q, &heads)) return NULL;
  const int sock = q.sock, file = q.file;
  piece_t *p = (piece_t *)calloc(1, sizeof(piece_t));
  if (!p) return fail(env, "sendPiece: out of memory");
  *p = q;
  memcpy(p->heads, heads, (size_t)(packets_of(q.length, q.packet_bytes) * q.head_bytes));
  p->sock = fcntl(sock, F_DUPFD_CLOEXEC, 0);
  p->file = p->sock < 0 ? -1 : fcntl(file, F_DUPFD_CLOEXEC, 0);
  if (p->sock < 0 || p->file < 0) {
    int e = errno;
    if (p->sock >= 0) close(p->sock);
    free(p);
    napi_throw_error(env, "SWARM_ERR_INTERNAL", e == EBADF ? "sendPiece: a descriptor is closed" : "sendPiece: dup failed");
    return NULL;
  }
  napi_value name;
  napi_create_string_utf8(env, "swarm.sendPiece", NAPI_AUTO_LENGTH, &name);
  napi_create_reference(env, a[8], 1, &p->callback);
  if (napi_create_async_work(env, NULL, name, execute, complete, p, &p->work) != napi_ok) {
    close(p->sock);
    close(p->file);
    napi_delete_reference(env, p->callback);
    free(p);
    return fail(env, "sendPiece: could not create the work");
  }
  if (napi_queue_async_work(env, p->work) != napi_ok) {
    close(p->sock);
    close(p->file);
    napi_delete_reference(env, p->callback);
    napi_delete_async_work(env, p->work);
    free(p);
    return fail(env, "sendPiece: could not queue the work");
  }
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "sendPiece", NAPI_AUTO_LENGTH, SendPiece, NULL, &fn);
  napi_set_named_property(env, exports, "sendPiece", fn);
  return exports;
}
