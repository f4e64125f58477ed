"""kafka-python side of the Barge compatibility suite (compat_python_test.go).

  produce BOOTSTRAP TOPIC N KEYS VALUE_LEN
      sends N records (key "key-%02d" % (seq % KEYS), value
      "python.<seq>." padded with "x" to VALUE_LEN bytes) with acks=all and
      gzip, flushes, and prints "A <seq> <partition> <offset>" per record.
  consume BOOTSTRAP TOPIC P:END[,P:END...]
      assigns the partitions (no consumer group), seeks to the beginning and
      prints "R <partition> <offset> <key> <value>" per record until every
      partition has been read up to END; exits 2 if that takes too long.

Lines are printed in bulk at the end; errors go to stderr with exit 1.
"""

import sys
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition


def produce(bootstrap, topic, n, keys, value_len):
    producer = KafkaProducer(
        bootstrap_servers=bootstrap.split(","),
        client_id="barge-compat-kafka-python",
        acks="all",
        compression_type="gzip",
        linger_ms=5,
        batch_size=64 * 1024,
    )
    print("api_version", producer.config["api_version"], file=sys.stderr)
    futures = []
    for seq in range(n):
        value = "python.%d." % seq
        value += "x" * max(0, value_len - len(value))
        key = "key-%02d" % (seq % keys)
        futures.append(producer.send(topic, key=key.encode(), value=value.encode()))
    producer.flush()
    out = []
    for seq, f in enumerate(futures):
        md = f.get(timeout=60)
        out.append("A %d %d %d" % (seq, md.partition, md.offset))
    producer.close()
    sys.stdout.write("\n".join(out) + "\n")


def consume(bootstrap, topic, ends_arg):
    ends = {}
    for item in ends_arg.split(","):
        p, end = item.split(":")
        ends[int(p)] = int(end)
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap.split(","),
        client_id="barge-compat-kafka-python",
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    print("api_version", consumer.config["api_version"], file=sys.stderr)
    tps = [TopicPartition(topic, p) for p in sorted(ends)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    nxt = {p: 0 for p in ends}
    out = []
    deadline = time.monotonic() + 180
    while any(nxt[p] < ends[p] for p in ends):
        if time.monotonic() > deadline:
            print("timed out: positions %s, ends %s" % (nxt, ends), file=sys.stderr)
            sys.stdout.write("\n".join(out) + "\n")
            sys.exit(2)
        batches = consumer.poll(timeout_ms=1000, max_records=10000)
        for tp, records in batches.items():
            for r in records:
                out.append("R %d %d %s %s" % (r.partition, r.offset, r.key.decode(), r.value.decode()))
                nxt[r.partition] = r.offset + 1
    consumer.close()
    sys.stdout.write("\n".join(out) + "\n")


def main():
    mode = sys.argv[1]
    if mode == "produce":
        produce(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]))
    elif mode == "consume":
        consume(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit("unknown mode %r" % mode)


if __name__ == "__main__":
    main()
