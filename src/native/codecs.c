/*
 * Streaming layer decoders over system libraries, for src/native/codecs.ts:
 *   zstd: libzstd's ZSTD_decompressStream (https://facebook.github.io/zstd/zstd_manual.html#Chapter9)
 *   gzip: ISA-L's isal_inflate with ISAL_GZIP (header, deflate data and CRC32/ISIZE trailer checked;
 *         https://github.com/intel/isa-l/blob/master/include/igzip_lib.h)
 * and one encoder:
 *   deflate: zlib's deflate with the gzip wrapper (HAVE_ZLIB), linked statically with its symbols kept local: Node
 *         exports its own bundled zlib (Chromium's, whose deflate writes other bytes) to addons, and a dynamic
 *         libz would have its calls bound to those. src/compression/gzip-encoder.ts uses it only after checking
 *         that it writes the reference bytes (canonical zlib 1.2.12 and later).
 * Each is built only when its header (and for deflate, libz.a) is found; `kinds` lists what this build has.
 *
 * JS API (N-API, ABI-stable across Node versions):
 *   open(kind) -> handle                    kind: "zstd" | "gzip"
 *   decode(handle, input, offset, maxOut, cb) calls cb(err, [consumed, drained, chunk, chunk, ...])
 *       decodes input[offset..] until it is used up and the decoder holds no more output (drained = true), or
 *       about maxOut bytes came out (a caller that stops reading gets no more than that: a compression bomb
 *       cannot fill memory), or the rest of the input is not enough for another step; consumed counts from offset.
 *   decodeInto(handle, input, offset, out, cb) calls cb(err, [consumed, drained, produced])
 *       the same, but into the caller's buffer `out` (from its start, at most out.length bytes): a caller that
 *       hands the output on at once decodes with two buffers, allocated once, instead of a new one per chunk.
 *   finish(handle) -> undefined              throws when the input ended inside a frame/member
 *   open("deflate", level) -> handle; decode() then compresses; endInput(handle) makes the following decode calls
 *       finish the stream (drained = the gzip trailer is out). deflateSync(input, level) -> Buffer: one whole stream.
 * Errors are thrown as Error with a message naming what is wrong in the data.
 *
 * gzip members follow one another as in Node's zlib (src/node_zlib.cc): after a member's trailer, input that
 * starts with a 0x00 byte is padding and ignored to the end; anything else must be another member.
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef HAVE_ZSTD
#include <zstd.h>
#endif
#ifdef HAVE_ISAL
#include <isa-l/igzip_lib.h>
#endif
#ifdef HAVE_ZLIB
#include <zlib.h>
#endif

#define OUT_CHUNK (256 << 10)

enum kind { KIND_ZSTD = 1, KIND_GZIP = 2, KIND_DEFLATE = 3 };

typedef struct {
  int kind;
  /* zstd: last ZSTD_decompressStream result (0 = at a frame boundary). gzip: a member is open. */
  size_t pending;
  int ignore_rest; /* gzip: trailing zero padding seen, the rest of the input is ignored */
  int member_done; /* gzip: the member ended; the next byte decides what follows */
  uint64_t seen_in;
#ifdef HAVE_ZSTD
  ZSTD_DStream *zs;
#endif
#ifdef HAVE_ISAL
  struct inflate_state *gz;
#endif
#ifdef HAVE_ZLIB
  z_stream *z;
  int finishing, ended;
#endif
} decoder;

#define CHECK(call)                                                                                                    \
  do {                                                                                                                 \
    if ((call) != napi_ok) {                                                                                           \
      napi_throw_error(env, NULL, "nixreg native codec: N-API call failed: " #call);                                   \
      return NULL;                                                                                                     \
    }                                                                                                                  \
  } while (0)

static void release(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  decoder *d = data;
#ifdef HAVE_ZSTD
  if (d->zs) ZSTD_freeDStream(d->zs);
#endif
#ifdef HAVE_ISAL
  free(d->gz);
#endif
#ifdef HAVE_ZLIB
  if (d->z) {
    deflateEnd(d->z);
    free(d->z);
  }
#endif
  free(d);
}

#ifdef HAVE_ZLIB
/* gzip wrapper (windowBits 15 + 16), memLevel 8, default strategy: the parameters of src/compression/gzip-encoder.ts */
static int deflate_open(z_stream *z, int level) { return deflateInit2(z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY); }
#endif

static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  char name[8] = {0};
  size_t len = 0;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || napi_get_value_string_utf8(env, argv[0], name, sizeof name, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "open(kind): kind must be a string");
    return NULL;
  }
  decoder *d = calloc(1, sizeof *d);
  if (!d) {
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  if (0) {
  }
#ifdef HAVE_ZSTD
  else if (strcmp(name, "zstd") == 0) {
    d->kind = KIND_ZSTD;
    d->zs = ZSTD_createDStream();
    /* frames made with --long=31 need a 2 GiB window, which the default limit (2^27) refuses; 31 is
       ZSTD_WINDOWLOG_MAX_64, defined only for static linking */
    if (!d->zs || ZSTD_isError(ZSTD_DCtx_setParameter(d->zs, ZSTD_d_windowLogMax, 31))) {
      release(env, d, NULL);
      napi_throw_error(env, NULL, "cannot create a zstd decoder");
      return NULL;
    }
  }
#endif
#ifdef HAVE_ISAL
  else if (strcmp(name, "gzip") == 0) {
    d->kind = KIND_GZIP;
    d->gz = malloc(sizeof *d->gz);
    if (!d->gz) {
      release(env, d, NULL);
      napi_throw_error(env, NULL, "out of memory");
      return NULL;
    }
    isal_inflate_init(d->gz);
    d->gz->crc_flag = ISAL_GZIP;
  }
#endif
#ifdef HAVE_ZLIB
  else if (strcmp(name, "deflate") == 0) {
    int32_t level = 1;
    if (argc >= 2) napi_get_value_int32(env, argv[1], &level);
    d->kind = KIND_DEFLATE;
    d->z = calloc(1, sizeof *d->z);
    if (!d->z || deflate_open(d->z, level) != Z_OK) {
      free(d->z);
      d->z = NULL;
      release(env, d, NULL);
      napi_throw_error(env, NULL, "cannot create a deflate encoder");
      return NULL;
    }
  }
#endif
  else {
    release(env, d, NULL);
    napi_throw_error(env, NULL, "this build has no decoder of that kind");
    return NULL;
  }
  napi_value handle;
  if (napi_create_external(env, d, release, NULL, &handle) != napi_ok) {
    release(env, d, NULL);
    napi_throw_error(env, NULL, "nixreg native codec: napi_create_external failed");
    return NULL;
  }
  return handle;
}

#ifdef HAVE_ISAL
static const char *isal_message(int r) {
  switch (r) {
    case ISAL_INVALID_BLOCK: return "invalid deflate block";
    case ISAL_INVALID_SYMBOL: return "invalid deflate symbol";
    case ISAL_INVALID_LOOKBACK: return "invalid distance too far back";
    case ISAL_INVALID_WRAPPER: return "incorrect header check";
    case ISAL_UNSUPPORTED_METHOD: return "unknown compression method";
    case ISAL_INCORRECT_CHECKSUM: return "incorrect data check";
    default: return "invalid gzip data";
  }
}
#endif

/* One step: decode some of in[0..n) into out[0..cap); sets *used and *produced; returns NULL or an error. */
static const char *step(decoder *d, const uint8_t *in, size_t n, uint8_t *out, size_t cap, size_t *used, size_t *produced) {
  *used = 0;
  *produced = 0;
#ifdef HAVE_ZSTD
  if (d->kind == KIND_ZSTD) {
    ZSTD_inBuffer ib = {in, n, 0};
    ZSTD_outBuffer ob = {out, cap, 0};
    size_t r = ZSTD_decompressStream(d->zs, &ob, &ib);
    if (ZSTD_isError(r)) return ZSTD_getErrorName(r);
    /* a call that moved nothing (no input left at a frame boundary) answers "a frame header next": not a
       half-read frame */
    if (ib.pos > 0 || ob.pos > 0) d->pending = r;
    *used = ib.pos;
    *produced = ob.pos;
    return NULL;
  }
#endif
#ifdef HAVE_ISAL
  if (d->kind == KIND_GZIP) {
    if (d->ignore_rest) {
      *used = n;
      return NULL;
    }
    if (d->member_done) {
      if (n == 0) return NULL;
      if (in[0] == 0x00) {
        d->ignore_rest = 1;
        *used = n;
        return NULL;
      }
      isal_inflate_reset(d->gz);
      d->gz->crc_flag = ISAL_GZIP;
      d->member_done = 0;
    }
    struct inflate_state *s = d->gz;
    s->next_in = (uint8_t *)in;
    s->avail_in = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
    s->next_out = out;
    s->avail_out = (uint32_t)cap;
    uint32_t before = s->avail_in;
    int r = isal_inflate(s);
    if (r < 0) return isal_message(r);
    *used = before - s->avail_in;
    *produced = cap - s->avail_out;
    d->pending = 1;
    if (s->block_state == ISAL_BLOCK_FINISH) {
      d->member_done = 1;
      d->pending = 0;
    }
    return NULL;
  }
#endif
#ifdef HAVE_ZLIB
  if (d->kind == KIND_DEFLATE) {
    if (d->ended) return NULL;
    z_stream *z = d->z;
    z->next_in = (Bytef *)in;
    z->avail_in = n > UINT32_MAX ? UINT32_MAX : (uInt)n;
    z->next_out = out;
    z->avail_out = (uInt)cap;
    uInt before = z->avail_in;
    int r = deflate(z, d->finishing ? Z_FINISH : Z_NO_FLUSH);
    if (r == Z_STREAM_ERROR) return "deflate failed";
    *used = before - z->avail_in;
    *produced = cap - z->avail_out;
    if (r == Z_STREAM_END) d->ended = 1;
    return NULL;
  }
#endif
  (void)in;
  (void)n;
  return "decoder of an unknown kind";
}

static decoder *unwrap(napi_env env, napi_value v) {
  decoder *d = NULL;
  if (napi_get_value_external(env, v, (void **)&d) != napi_ok || !d) napi_throw_type_error(env, NULL, "not a decoder handle");
  return d;
}

/* One decode call, run on libuv's thread pool like node:zlib's work, so decoding overlaps the main thread's
   hashing and I/O. The input stays referenced until the call completes; the decoder is used by one call at a
   time (the stream waits for each before the next). */
#define MAX_CHUNKS 64
typedef struct {
  napi_async_work work;
  napi_ref input_ref, cb_ref;
  decoder *d;
  const uint8_t *in;
  size_t len, pos0, pos;
  int64_t max_out;
  uint8_t *outs[MAX_CHUNKS];
  size_t out_lens[MAX_CHUNKS];
  int nouts, drained;
  const char *err;
  /* decodeInto: the caller's output buffer, filled from its start */
  napi_ref into_ref;
  uint8_t *into;
  size_t into_cap, into_len;
} job;

static void job_run(napi_env env, void *data) {
  (void)env;
  job *j = data;
  int64_t out_total = 0;
  while (j->nouts < MAX_CHUNKS) {
    uint8_t *out = malloc(OUT_CHUNK);
    if (!out) {
      j->err = "out of memory";
      return;
    }
    size_t used, produced;
    j->err = step(j->d, j->in + j->pos, j->len - j->pos, out, OUT_CHUNK, &used, &produced);
    if (j->err) {
      free(out);
      return;
    }
    j->pos += used;
    if (produced > 0) {
      uint8_t *shrunk = produced < OUT_CHUNK ? realloc(out, produced) : out;
      j->outs[j->nouts] = shrunk ? shrunk : out;
      j->out_lens[j->nouts++] = produced;
      out_total += (int64_t)produced;
    } else {
      free(out);
    }
    /* drained: no input left and a call without input gives nothing more (zstd may return after one block
       with output space to spare, so a short output alone does not mean done) */
    if (j->pos == j->len && produced == 0) {
      j->drained = 1;
      break;
    }
    if (used == 0 && produced == 0) break; /* needs more input than is left */
    if (out_total >= j->max_out) break;
  }
}

/* decodeInto's step: as job_run, but into the one buffer the caller gave, until it is full */
static void job_run_into(napi_env env, void *data) {
  (void)env;
  job *j = data;
  while (j->into_len < j->into_cap) {
    size_t used, produced;
    j->err = step(j->d, j->in + j->pos, j->len - j->pos, j->into + j->into_len, j->into_cap - j->into_len, &used, &produced);
    if (j->err) return;
    j->pos += used;
    j->into_len += produced;
    if (j->pos == j->len && produced == 0) {
      j->drained = 1;
      break;
    }
    if (used == 0 && produced == 0) break; /* needs more input than is left */
  }
}

static void free_chunk(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
}

static void job_done(napi_env env, napi_status status, void *data) {
  job *j = data;
  napi_value cb, global, argv[2], undef;
  int i = 0;
  napi_get_undefined(env, &undef);
  napi_get_reference_value(env, j->cb_ref, &cb);
  napi_get_global(env, &global);
  argv[0] = undef;
  argv[1] = undef;
  if (status != napi_ok && !j->err) j->err = "decode was cancelled";
  if (j->err) {
    napi_value msg;
    napi_create_string_utf8(env, j->err, NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, NULL, msg, &argv[0]);
  } else {
    napi_value result, v;
    napi_create_array(env, &result);
    napi_create_int64(env, (int64_t)(j->pos - j->pos0), &v);
    napi_set_element(env, result, 0, v);
    napi_get_boolean(env, j->drained, &v);
    napi_set_element(env, result, 1, v);
    if (j->into) {
      napi_create_int64(env, (int64_t)j->into_len, &v);
      napi_set_element(env, result, 2, v);
    }
    for (; i < j->nouts; i++) {
      void *ignored;
      if (napi_create_external_buffer(env, j->out_lens[i], j->outs[i], free_chunk, NULL, &v) != napi_ok) {
        /* external buffers unsupported (some embedders): copy instead */
        napi_create_buffer_copy(env, j->out_lens[i], j->outs[i], &ignored, &v);
        free(j->outs[i]);
      }
      napi_set_element(env, result, (uint32_t)i + 2, v);
    }
    argv[1] = result;
  }
  for (; i < j->nouts; i++) free(j->outs[i]); /* an error: chunks not handed to JS */
  napi_delete_reference(env, j->input_ref);
  napi_delete_reference(env, j->cb_ref);
  if (j->into_ref) napi_delete_reference(env, j->into_ref);
  napi_delete_async_work(env, j->work);
  free(j);
  napi_call_function(env, global, cb, 2, argv, NULL);
}

static napi_value js_decode(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5) {
    napi_throw_type_error(env, NULL, "decode(handle, input, offset, maxOut, callback)");
    return NULL;
  }
  decoder *d = unwrap(env, argv[0]);
  if (!d) return NULL;
  uint8_t *data;
  size_t length;
  int64_t offset, max_out;
  CHECK(napi_get_buffer_info(env, argv[1], (void **)&data, &length));
  CHECK(napi_get_value_int64(env, argv[2], &offset));
  CHECK(napi_get_value_int64(env, argv[3], &max_out));
  if (offset < 0 || (size_t)offset > length) {
    napi_throw_range_error(env, NULL, "offset outside the input");
    return NULL;
  }
  job *j = calloc(1, sizeof *j);
  if (!j) {
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  j->d = d;
  j->in = data;
  j->len = length;
  j->pos0 = j->pos = (size_t)offset;
  j->max_out = max_out;
  napi_value name;
  CHECK(napi_create_reference(env, argv[1], 1, &j->input_ref));
  CHECK(napi_create_reference(env, argv[4], 1, &j->cb_ref));
  CHECK(napi_create_string_utf8(env, "nixreg-decode", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_create_async_work(env, NULL, name, job_run, job_done, j, &j->work));
  CHECK(napi_queue_async_work(env, j->work));
  return NULL;
}

/* decodeInto(handle, input, offset, out, cb): decodes into `out` (from its start) on the thread pool until it is
   full, the input is used up and nothing more comes out (drained), or what is left is too short for another step;
   then cb(err, [consumed, drained, produced]). `out` must not be touched until cb runs. */
static napi_value js_decode_into(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5) {
    napi_throw_type_error(env, NULL, "decodeInto(handle, input, offset, out, callback)");
    return NULL;
  }
  decoder *d = unwrap(env, argv[0]);
  if (!d) return NULL;
  uint8_t *data, *into;
  size_t length, cap;
  int64_t offset;
  CHECK(napi_get_buffer_info(env, argv[1], (void **)&data, &length));
  CHECK(napi_get_value_int64(env, argv[2], &offset));
  CHECK(napi_get_buffer_info(env, argv[3], (void **)&into, &cap));
  if (offset < 0 || (size_t)offset > length) {
    napi_throw_range_error(env, NULL, "offset outside the input");
    return NULL;
  }
  if (cap == 0) {
    napi_throw_range_error(env, NULL, "an empty output buffer");
    return NULL;
  }
  job *j = calloc(1, sizeof *j);
  if (!j) {
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  j->d = d;
  j->in = data;
  j->len = length;
  j->pos0 = j->pos = (size_t)offset;
  j->into = into;
  j->into_cap = cap;
  napi_value name;
  CHECK(napi_create_reference(env, argv[1], 1, &j->input_ref));
  CHECK(napi_create_reference(env, argv[3], 1, &j->into_ref));
  CHECK(napi_create_reference(env, argv[4], 1, &j->cb_ref));
  CHECK(napi_create_string_utf8(env, "nixreg-decode", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_create_async_work(env, NULL, name, job_run_into, job_done, j, &j->work));
  CHECK(napi_queue_async_work(env, j->work));
  return NULL;
}

static napi_value js_finish(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) {
    napi_throw_type_error(env, NULL, "finish(handle)");
    return NULL;
  }
  decoder *d = unwrap(env, argv[0]);
  if (!d) return NULL;
  if (d->pending != 0) {
    napi_throw_error(env, NULL, "unexpected end of file");
    return NULL;
  }
  return NULL;
}

#ifdef HAVE_ZLIB
static napi_value js_end_input(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  decoder *d = argc < 1 ? NULL : unwrap(env, argv[0]);
  if (!d) return NULL;
  d->finishing = 1;
  return NULL;
}

static napi_value js_deflate_sync(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result;
  uint8_t *data;
  size_t length;
  int32_t level = 1;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) {
    napi_throw_type_error(env, NULL, "deflateSync(input, level)");
    return NULL;
  }
  CHECK(napi_get_buffer_info(env, argv[0], (void **)&data, &length));
  CHECK(napi_get_value_int32(env, argv[1], &level));
  z_stream z;
  memset(&z, 0, sizeof z);
  if (deflate_open(&z, level) != Z_OK) {
    napi_throw_error(env, NULL, "cannot create a deflate encoder");
    return NULL;
  }
  uLong cap = deflateBound(&z, (uLong)length);
  uint8_t *out = malloc(cap);
  if (!out) {
    deflateEnd(&z);
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  z.next_in = data;
  z.avail_in = (uInt)length;
  z.next_out = out;
  z.avail_out = (uInt)cap;
  int r = deflate(&z, Z_FINISH);
  size_t produced = cap - z.avail_out;
  deflateEnd(&z);
  if (r != Z_STREAM_END) {
    free(out);
    napi_throw_error(env, NULL, "deflate failed");
    return NULL;
  }
  void *copy;
  napi_status st = napi_create_buffer_copy(env, produced, out, &copy, &result);
  free(out);
  CHECK(st);
  return result;
}
#endif

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn, kinds, s;
  uint32_t n = 0;
  CHECK(napi_create_function(env, "open", NAPI_AUTO_LENGTH, js_open, NULL, &fn));
  CHECK(napi_set_named_property(env, exports, "open", fn));
  CHECK(napi_create_function(env, "decode", NAPI_AUTO_LENGTH, js_decode, NULL, &fn));
  CHECK(napi_set_named_property(env, exports, "decode", fn));
  CHECK(napi_create_function(env, "decodeInto", NAPI_AUTO_LENGTH, js_decode_into, NULL, &fn));
  CHECK(napi_set_named_property(env, exports, "decodeInto", fn));
  CHECK(napi_create_function(env, "finish", NAPI_AUTO_LENGTH, js_finish, NULL, &fn));
  CHECK(napi_set_named_property(env, exports, "finish", fn));
  CHECK(napi_create_array(env, &kinds));
#ifdef HAVE_ZSTD
  CHECK(napi_create_string_utf8(env, "zstd", NAPI_AUTO_LENGTH, &s));
  CHECK(napi_set_element(env, kinds, n++, s));
#endif
#ifdef HAVE_ISAL
  CHECK(napi_create_string_utf8(env, "gzip", NAPI_AUTO_LENGTH, &s));
  CHECK(napi_set_element(env, kinds, n++, s));
#endif
#ifdef HAVE_ZLIB
  CHECK(napi_create_string_utf8(env, "deflate", NAPI_AUTO_LENGTH, &s));
  CHECK(napi_set_element(env, kinds, n++, s));
  CHECK(napi_create_function(env, "endInput", NAPI_AUTO_LENGTH, js_end_input, NULL, &fn));
  CHECK(napi_set_named_property(env, exports, "endInput", fn));
  CHECK(napi_create_function(env, "deflateSync", NAPI_AUTO_LENGTH, js_deflate_sync, NULL, &fn));
  CHECK(napi_set_named_property(env, exports, "deflateSync", fn));
#endif
  (void)s;
  (void)n;
  CHECK(napi_set_named_property(env, exports, "kinds", kinds));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
