"""Python peer of zoomstream-processor: confluent-kafka + fastavro, written the way a Python team
would: consume a batch, transform (split + Avro), produce, flush, commit (at-least-once, like
`zoomstream-processor --delivery at-least-once`). Drains `--expect` raw records and prints one
JSON report line; the rate is measured from the first record received, not from start-up.
"""

import argparse
import json
import sys
import time

from confluent_kafka import Consumer, KafkaError, Producer

from zoom_transform import Router, load_sources


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--topic", default="zoom.webhooks.raw")
    ap.add_argument("--sources", default="schemas/sources.toml")
    ap.add_argument("--expect", type=int, required=True)
    ap.add_argument("--batch", type=int, default=1000)
    args = ap.parse_args()

    launched = time.monotonic()
    router = Router(load_sources(args.sources))
    consumer = Consumer({
        "bootstrap.servers": args.brokers, "group.id": args.group, "auto.offset.reset": "earliest",
        "enable.auto.commit": False, "session.timeout.ms": 6000, "isolation.level": "read_committed",
    })
    producer = Producer({
        "bootstrap.servers": args.brokers, "acks": "all", "enable.idempotence": True, "linger.ms": 5,
    })
    failures = []

    def on_delivery(err, _msg):
        if err is not None:
            failures.append(err)

    consumer.subscribe([args.topic])
    consumed = produced = 0
    first = None
    while consumed < args.expect:
        msgs = consumer.consume(num_messages=args.batch, timeout=0.5)
        if not msgs:
            continue
        if first is None:
            first = time.monotonic()
        for msg in msgs:
            if msg.error():
                if msg.error().code() != KafkaError._PARTITION_EOF:
                    print(f"consumer error: {msg.error()}", file=sys.stderr)
                continue
            headers = {k: (v.decode() if v is not None else None) for k, v in (msg.headers() or [])}
            for topic, key, value, out_headers in router.transform(msg.value(), headers):
                while True:
                    try:
                        producer.produce(topic, value=value, key=key, headers=out_headers, on_delivery=on_delivery)
                        break
                    except BufferError:
                        producer.poll(0.01)
                produced += 1
            consumed += 1
            producer.poll(0)
        # At-least-once: every output acknowledged before the offsets are committed.
        producer.flush(30)
        if failures:
            raise SystemExit(f"{len(failures)} outputs not delivered: {failures[0]}")
        consumer.commit(asynchronous=False)
    end = time.monotonic()
    consumer.close()
    seconds = end - first
    print(json.dumps({
        "name": "python_confluent", "records_in": consumed, "records_out": produced, "seconds": seconds,
        "in_per_s": consumed / seconds, "out_per_s": produced / seconds, "startup_s": first - launched,
    }))


if __name__ == "__main__":
    main()
