/*  dev_kafka.h: `recsd dev-kafka`, a librdkafka mock cluster for dev/tests. */
#ifndef RECSD_DEV_KAFKA_H
#define RECSD_DEV_KAFKA_H

//  Starts the mock cluster, creates the topics, prints the bootstrap
//  servers on stdout, runs until SIGTERM/SIGINT. Returns the exit status.
int dev_kafka_main(int argc, char **argv);

#endif
