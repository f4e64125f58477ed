"""kafka-python side of the Barge consumer group tests (group_clients_test.go).

  consume BOOTSTRAP TOPIC GROUP N
      joins GROUP with a KafkaConsumer subscribed to TOPIC (earliest reset,
      no auto commit), takes exactly N records, commits what it took
      (synchronously), leaves the group, and prints "R <partition> <offset>"
      per record; exits 2 if the records do not come within 90 s.

Errors go to stderr with exit 1.
"""

import sys
import time

from kafka import KafkaConsumer


def consume(bootstrap, topic, group, n):
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap.split(","),
        group_id=group,
        client_id="barge-group-kafka-python",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    out = []
    deadline = time.time() + 90
    while len(out) < n:
        if time.time() > deadline:
            print("took %d of %d records in 90 s" % (len(out), n), file=sys.stderr)
            sys.exit(2)
        # max_records keeps the consumed position at the records taken, so
        # commit() commits exactly those.
        batch = consumer.poll(timeout_ms=500, max_records=n - len(out))
        for records in batch.values():
            for r in records:
                out.append("R %d %d" % (r.partition, r.offset))
    consumer.commit()
    consumer.close()
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    if len(sys.argv) != 6 or sys.argv[1] != "consume":
        print(__doc__, file=sys.stderr)
        sys.exit(1)
    consume(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
