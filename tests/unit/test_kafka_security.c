/*  test_kafka_security.c: the Kafka clients' TLS/SASL settings
    (kafka_security.c) as librdkafka ends up holding them. */
#include <criterion/criterion.h>
#include <string.h>

#include "config.h"
#include "kafka_security.h"
#include "leak_check.h"

TestSuite(kafka_security, .fini = leak_check_fini);

static const char *s_get(rd_kafka_conf_t *conf, const char *name, char *buf, size_t len)
{
    size_t size = len;
    if (rd_kafka_conf_get(conf, name, buf, &size) != RD_KAFKA_CONF_OK)
        return NULL;
    return buf;
}

Test(kafka_security, plaintext_sets_nothing)
{
    config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char err[256], buf[256];
    cr_assert_eq(kafka_security_apply(conf, &cfg, err, sizeof err), 0);
    cr_assert_str_eq(s_get(conf, "security.protocol", buf, sizeof buf), "plaintext");
    cr_assert_eq(kafka_security_apply(conf, NULL, err, sizeof err), 0);
    rd_kafka_conf_destroy(conf);
}

Test(kafka_security, ssl_verifies_the_broker_and_its_name)
{
    config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    snprintf(cfg.kafka_security_protocol, sizeof cfg.kafka_security_protocol, "ssl");
    snprintf(cfg.kafka_ssl_ca_file, sizeof cfg.kafka_ssl_ca_file,
             "/etc/ssl/certs/ca-certificates.crt");
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char err[256] = "", buf[512];
    cr_assert_eq(kafka_security_apply(conf, &cfg, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(s_get(conf, "security.protocol", buf, sizeof buf), "ssl");
    cr_assert_str_eq(s_get(conf, "enable.ssl.certificate.verification", buf, sizeof buf), "true");
    cr_assert_str_eq(s_get(conf, "ssl.endpoint.identification.algorithm", buf, sizeof buf),
                     "https");
    cr_assert_str_eq(s_get(conf, "ssl.ca.location", buf, sizeof buf),
                     "/etc/ssl/certs/ca-certificates.crt");
    rd_kafka_conf_destroy(conf);
}

Test(kafka_security, sasl_ssl_with_scram)
{
    config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    snprintf(cfg.kafka_security_protocol, sizeof cfg.kafka_security_protocol, "sasl_ssl");
    snprintf(cfg.kafka_sasl_mechanism, sizeof cfg.kafka_sasl_mechanism, "SCRAM-SHA-512");
    snprintf(cfg.kafka_sasl_username, sizeof cfg.kafka_sasl_username, "recsd");
    snprintf(cfg.kafka_sasl_password, sizeof cfg.kafka_sasl_password, "s3cret-pass");
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char err[256] = "", buf[256];
    cr_assert_eq(kafka_security_apply(conf, &cfg, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(s_get(conf, "sasl.mechanisms", buf, sizeof buf), "SCRAM-SHA-512");
    cr_assert_str_eq(s_get(conf, "sasl.username", buf, sizeof buf), "recsd");
    cr_assert_str_eq(s_get(conf, "enable.ssl.certificate.verification", buf, sizeof buf), "true");
    rd_kafka_conf_destroy(conf);
}

Test(kafka_security, unknown_protocol_or_mechanism_is_refused)
{
    config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    snprintf(cfg.kafka_security_protocol, sizeof cfg.kafka_security_protocol, "tls");
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char err[256] = "";
    cr_assert_eq(kafka_security_apply(conf, &cfg, err, sizeof err), -1);
    cr_assert(strstr(err, "RECSD_KAFKA_SECURITY_PROTOCOL"), "%s", err);
    snprintf(cfg.kafka_security_protocol, sizeof cfg.kafka_security_protocol, "sasl_plaintext");
    snprintf(cfg.kafka_sasl_mechanism, sizeof cfg.kafka_sasl_mechanism, "GSSAPI");
    snprintf(cfg.kafka_sasl_password, sizeof cfg.kafka_sasl_password, "hidden-pw");
    cr_assert_eq(kafka_security_apply(conf, &cfg, err, sizeof err), -1);
    cr_assert(strstr(err, "RECSD_KAFKA_SASL_MECHANISM"), "%s", err);
    cr_assert_null(strstr(err, "hidden-pw"));
    rd_kafka_conf_destroy(conf);
}
