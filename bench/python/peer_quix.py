"""Python peer of zoomstream-processor written with quixstreams (StreamingDataFrame): the same
transform (zoom_transform.py), outputs routed to each source's topic with a dynamic `to_topic`,
at-least-once (quix's default checkpointing). Drains `--expect` raw records and prints one JSON
report line, timed from the first record.
"""

import argparse
import json
import logging
import time

from quixstreams import Application
from quixstreams.models.serializers import Serializer

from zoom_transform import Router, load_sources


class AvroBytes(Serializer):
    """The transform already encoded the value: pass its bytes through."""

    def __call__(self, value, ctx):
        return value["value"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--topic", default="zoom.webhooks.raw")
    ap.add_argument("--sources", default="schemas/sources.toml")
    ap.add_argument("--expect", type=int, required=True)
    args = ap.parse_args()

    launched = time.monotonic()
    sources = load_sources(args.sources)
    router = Router(sources)
    app = Application(
        broker_address=args.brokers,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        processing_guarantee="at-least-once",
        auto_create_topics=False,
        loglevel=logging.WARNING,
        consumer_extra_config={"session.timeout.ms": 6000, "isolation.level": "read_committed"},
        producer_extra_config={"enable.idempotence": True, "linger.ms": 5},
    )
    raw = app.topic(args.topic, value_deserializer="bytes", key_deserializer="bytes")
    outs = {s.topic: app.topic(s.topic, value_serializer=AvroBytes(), key_serializer="str") for s in sources}
    state = {"first": None, "in": 0, "out": 0}

    def split(value, key, timestamp, headers):
        if state["first"] is None:
            state["first"] = time.monotonic()
        state["in"] += 1
        hdrs = {k: (v.decode() if v is not None else None) for k, v in (headers or [])}
        outputs = [{"topic": t, "key": k, "value": v} for t, k, v, _h in router.transform(value, hdrs)]
        state["out"] += len(outputs)
        if state["in"] >= args.expect:
            # Checked here, not after to_topic: the last records may have no outputs. quix
            # finishes the current message, flushes and commits before run() returns.
            app.stop()
        return outputs

    sdf = app.dataframe(raw)
    sdf = sdf.apply(split, expand=True, metadata=True)
    sdf = sdf.to_topic(lambda value, key, ts, headers: outs[value["topic"]], key=lambda value: value["key"])

    app.run()
    end = time.monotonic()
    seconds = end - state["first"]
    print(json.dumps({
        "name": "python_quix", "records_in": state["in"], "records_out": state["out"], "seconds": seconds,
        "in_per_s": state["in"] / seconds, "out_per_s": state["out"] / seconds,
        "startup_s": state["first"] - launched,
    }))


if __name__ == "__main__":
    main()
