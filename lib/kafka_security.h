/*  kafka_security.h: TLS (and SASL) for recsd's Kafka clients, from the
    configuration, applied the same way to the ingestors' consumers and
    the publisher's producer:

      RECSD_KAFKA_SECURITY_PROTOCOL  "" (plaintext, the default), plaintext,
                                     ssl, sasl_plaintext or sasl_ssl
      RECSD_KAFKA_SSL_CA_FILE        CA bundle the brokers' certificates are
                                     verified against ("" = the system's)
      RECSD_KAFKA_SSL_CERT_FILE,     client certificate and key, for brokers
      RECSD_KAFKA_SSL_KEY_FILE       that require mutual TLS
      RECSD_KAFKA_SASL_MECHANISM     PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512
      RECSD_KAFKA_SASL_USERNAME, RECSD_KAFKA_SASL_PASSWORD

    With TLS the broker's certificate is always verified, host name
    included (enable.ssl.certificate.verification and
    ssl.endpoint.identification.algorithm=https): there is no setting to
    turn verification off.
*/
#ifndef RECSD_KAFKA_SECURITY_H
#define RECSD_KAFKA_SECURITY_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

#include "config.h"

//  Sets the security properties cfg asks for on conf. cfg NULL or the
//  plaintext default sets nothing. Returns 0, or -1 with the reason in err
//  (an unknown protocol or mechanism, a property librdkafka refuses; the
//  password never appears in it).
int kafka_security_apply(rd_kafka_conf_t *conf, const config_t *cfg, char *err, size_t errlen);

#endif
