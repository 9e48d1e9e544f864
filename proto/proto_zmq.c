/*  proto_zmq.c: proto messages over czmq sockets (see proto_zmq.h). */
#include "proto_zmq.h"

#include <errno.h>
#include <stdlib.h>

int proto_send(zsock_t *sock, zframe_t *identity, const proto_msg_t *msg)
{
    char err[256];
    char *data = NULL;
    size_t size = 0;
    if (proto_encode(msg, &data, &size, err, sizeof err) != 0) {
        errno = EINVAL;
        return -1;
    }
    void *handle = zsock_resolve(sock);
    int rc = 0;
    if (identity && zmq_send(handle, zframe_data(identity), zframe_size(identity),
                             ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        rc = -1;
    if (rc == 0 && zmq_send(handle, data, size, ZMQ_DONTWAIT) < 0)
        rc = -1;
    int saved = errno;
    free(data);
    errno = saved;
    return rc;
}

//  Drops the rest of a multipart message so the next receive starts clean.
static void s_drain_more(void *handle)
{
    int more = 1;
    size_t len = sizeof more;
    while (zmq_getsockopt(handle, ZMQ_RCVMORE, &more, &len) == 0 && more) {
        zmq_msg_t part;
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, handle, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&part);
            return;
        }
        zmq_msg_close(&part);
    }
}

proto_msg_t *proto_recv(zsock_t *sock, zframe_t **identity_p, char *err, size_t errlen)
{
    void *handle = zsock_resolve(sock);
    if (identity_p) {
        *identity_p = NULL;
        zframe_t *identity = zframe_recv_nowait(sock);
        if (!identity) {
            errno = EAGAIN;
            return NULL;
        }
        if (!zframe_more(identity)) {
            zframe_destroy(&identity);
            snprintf(err, errlen, "message has no body frame");
            errno = EPROTO;
            return NULL;
        }
        *identity_p = identity;
    }
    zmq_msg_t body;
    zmq_msg_init(&body);
    if (zmq_msg_recv(&body, handle, ZMQ_DONTWAIT) < 0) {
        int saved = errno;
        zmq_msg_close(&body);
        if (identity_p)
            zframe_destroy(identity_p);
        errno = saved == EAGAIN && identity_p ? EPROTO : saved;
        snprintf(err, errlen, "receive failed: %s", zmq_strerror(saved));
        return NULL;
    }
    proto_msg_t *msg = NULL;
    if (zmq_msg_more(&body)) {
        snprintf(err, errlen, "unexpected extra frames");
        s_drain_more(handle);
    } else
        msg = proto_decode(zmq_msg_data(&body), zmq_msg_size(&body), err, errlen);
    zmq_msg_close(&body);
    if (!msg) {
        if (identity_p)
            zframe_destroy(identity_p);
        errno = EPROTO;
    }
    return msg;
}
