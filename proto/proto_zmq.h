/*  proto_zmq.h: proto messages over ZeroMQ sockets (czmq zsock_t).

    Framing: a DEALER sends one frame, the encoded envelope; a ROUTER sees
    [identity, envelope] and answers [identity, envelope]. There is no empty
    delimiter frame: nothing in recsd speaks REQ/REP.
*/
#ifndef RECSD_PROTO_ZMQ_H
#define RECSD_PROTO_ZMQ_H

#include <czmq.h>

#include "proto.h"

//  Encodes and sends msg without blocking. For a ROUTER socket pass the
//  peer's identity frame (borrowed), else NULL. Returns 0, or -1 with errno
//  set (EAGAIN: no peer or queue full; EHOSTUNREACH: unknown peer with
//  ZMQ_ROUTER_MANDATORY; EINVAL: msg does not validate).
int proto_send(zsock_t *sock, zframe_t *identity, const proto_msg_t *msg);

//  Receives one message without blocking. On a ROUTER socket *identity_p
//  receives the peer identity frame (caller owns it, destroy with
//  zframe_destroy); pass NULL on a DEALER. Returns a message the caller owns,
//  or NULL: with errno EAGAIN when nothing was waiting, else EPROTO with the
//  reason in err (the bad message has been consumed and dropped).
proto_msg_t *proto_recv(zsock_t *sock, zframe_t **identity_p, char *err, size_t errlen);

#endif
