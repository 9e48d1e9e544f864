/*  kafka_security.c: Kafka client TLS/SASL settings (see kafka_security.h). */
#include "kafka_security.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static int s_set(rd_kafka_conf_t *conf, const char *name, const char *value, bool secret, char *err,
                 size_t errlen)
{
    char why[256];
    if (rd_kafka_conf_set(conf, name, value, why, sizeof why) != RD_KAFKA_CONF_OK) {
        snprintf(err, errlen, "kafka %s%s%s: %s", name, secret ? "" : "=", secret ? "" : value,
                 why);
        return -1;
    }
    return 0;
}

static bool s_one_of(const char *value, const char *const *allowed)
{
    for (size_t i = 0; allowed[i]; i++)
        if (strcmp(value, allowed[i]) == 0)
            return true;
    return false;
}

int kafka_security_apply(rd_kafka_conf_t *conf, const config_t *cfg, char *err, size_t errlen)
{
    if (!cfg || !cfg->kafka_security_protocol[0] ||
        strcmp(cfg->kafka_security_protocol, "plaintext") == 0)
        return 0;
    static const char *const protocols[] = {"ssl", "sasl_plaintext", "sasl_ssl", NULL};
    static const char *const mechanisms[] = {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", NULL};
    const char *protocol = cfg->kafka_security_protocol;
    if (!s_one_of(protocol, protocols)) {
        snprintf(err, errlen,
                 "RECSD_KAFKA_SECURITY_PROTOCOL: \"%.40s\" is not plaintext, ssl, sasl_plaintext "
                 "or sasl_ssl",
                 protocol);
        return -1;
    }
    if (s_set(conf, "security.protocol", protocol, false, err, errlen) != 0)
        return -1;
    if (strstr(protocol, "ssl")) {
        if (s_set(conf, "enable.ssl.certificate.verification", "true", false, err, errlen) ||
            s_set(conf, "ssl.endpoint.identification.algorithm", "https", false, err, errlen) ||
            (cfg->kafka_ssl_ca_file[0] &&
             s_set(conf, "ssl.ca.location", cfg->kafka_ssl_ca_file, false, err, errlen)) ||
            (cfg->kafka_ssl_cert_file[0] && s_set(conf, "ssl.certificate.location",
                                                  cfg->kafka_ssl_cert_file, false, err, errlen)) ||
            (cfg->kafka_ssl_key_file[0] &&
             s_set(conf, "ssl.key.location", cfg->kafka_ssl_key_file, false, err, errlen)))
            return -1;
    }
    if (strncmp(protocol, "sasl", 4) == 0) {
        const char *mech = cfg->kafka_sasl_mechanism[0] ? cfg->kafka_sasl_mechanism : "PLAIN";
        if (!s_one_of(mech, mechanisms)) {
            snprintf(err, errlen,
                     "RECSD_KAFKA_SASL_MECHANISM: \"%.40s\" is not PLAIN, SCRAM-SHA-256 or "
                     "SCRAM-SHA-512",
                     mech);
            return -1;
        }
        if (s_set(conf, "sasl.mechanisms", mech, false, err, errlen) ||
            s_set(conf, "sasl.username", cfg->kafka_sasl_username, false, err, errlen) ||
            s_set(conf, "sasl.password", cfg->kafka_sasl_password, true, err, errlen))
            return -1;
    }
    return 0;
}
