"""Checks that the Benthos processor peer (bench/benthos/processor.yaml) produces the same records as
zoomstream-processor: after both drained the same raw topic on one broker, the processor into the
source topics and Benthos into the same topics under a prefix (TOPIC_PREFIX), it compares per
topic the record counts, and per record (matched by the zoomstream-event-id header) the key, the
headers, the single-object header (C3 01 + schema fingerprint) and the fields fastavro decodes.
Exits non-zero on any difference.

    python bench/benthos/compare.py --brokers HOST:PORT --prefix benthos. [--sources schemas/sources.toml]
"""

import argparse
import io
import json
import os
import sys
import tomllib

import fastavro
from confluent_kafka import Consumer, TopicPartition


def read_topic(brokers, topic):
    consumer = Consumer({"bootstrap.servers": brokers, "group.id": "compare", "enable.auto.commit": False})
    meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
    if meta is None or meta.error is not None:
        consumer.close()
        return []
    out = []
    for p in meta.partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        if high <= low:
            continue
        consumer.assign([TopicPartition(topic, p, low)])
        while True:
            msg = consumer.poll(5)
            if msg is None:
                raise SystemExit(f"{topic}[{p}]: stalled before offset {high}")
            if msg.error():
                continue
            out.append(msg)
            if msg.offset() >= high - 1:
                break
    consumer.close()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--prefix", default="benthos.")
    ap.add_argument("--sources", default="schemas/sources.toml")
    ap.add_argument("--sample", type=int, default=0, help="records compared per topic (0: all)")
    args = ap.parse_args()
    with open(args.sources, "rb") as f:
        sources = tomllib.load(f)["source"]
    base = os.path.dirname(os.path.abspath(args.sources))
    schemas = {}
    for s in sources:
        with open(os.path.join(base, s["schema"])) as f:
            schemas.setdefault(s["topic"], fastavro.parse_schema(json.load(f)))
    problems = []
    compared = 0
    for topic, schema in sorted(schemas.items()):
        ours, theirs = read_topic(args.brokers, topic), read_topic(args.brokers, args.prefix + topic)
        if not ours and not theirs:
            continue
        print(f"{topic}: processor {len(ours)}, benthos {len(theirs)}")
        if len(ours) != len(theirs):
            problems.append(f"{topic}: {len(ours)} records from the processor, {len(theirs)} from Benthos")

        def by_id(msgs):
            return {dict(m.headers())["zoomstream-event-id"].decode(): m for m in msgs}

        ours_by, theirs_by = by_id(ours), by_id(theirs)
        ids = sorted(ours_by)
        if args.sample:
            ids = ids[: args.sample]
        for event_id in ids:
            a, b = ours_by[event_id], theirs_by.get(event_id)
            if b is None:
                problems.append(f"{topic}: {event_id} missing from Benthos")
                continue
            compared += 1
            if a.key() != b.key():
                problems.append(f"{topic} {event_id}: key {a.key()!r} != {b.key()!r}")
            ha, hb = sorted(a.headers()), sorted(b.headers())
            if ha != hb:
                problems.append(f"{topic} {event_id}: headers {ha} != {hb}")
            if a.value()[:10] != b.value()[:10]:
                problems.append(f"{topic} {event_id}: single-object header {a.value()[:10].hex()} != {b.value()[:10].hex()}")
            ra = fastavro.schemaless_reader(io.BytesIO(a.value()[10:]), schema)
            rb = fastavro.schemaless_reader(io.BytesIO(b.value()[10:]), schema)
            if ra != rb:
                diff = {k: (ra.get(k), rb.get(k)) for k in ra if ra.get(k) != rb.get(k)}
                problems.append(f"{topic} {event_id}: fields differ {diff}")
    for p in problems[:20]:
        print("DIFF", p)
    print(f"{compared} records compared field by field, {len(problems)} differences")
    sys.exit(1 if problems or compared == 0 else 0)


if __name__ == "__main__":
    main()
