#!/bin/sh
# Starts the six data nodes of examples/s3-cluster (see README.md), two per zone.
set -e
i=1
for zone in rack-a rack-a rack-b rack-b rack-c rack-c; do
    hyperscale s3 datanode --bind 127.0.0.1:910$i --data-dir data/s3-dn$i \
        --zone $zone --node-id dn$i --cluster-secret-file data/s3-cluster.secret &
    i=$((i + 1))
done
wait
