#!/usr/bin/env python3
"""Zoom analytics over zoomstream's source topics, with stock libraries only.

Reads three source topics from the beginning to their current end, loads them into DuckDB and
prints, as JSON, what an analyst asks first:

- per meeting (from meeting-participants): attendees, and minutes attended (each participant's
  leave time minus join time, summed);
- per host (from recording-completed): recordings (distinct meetings recorded) and files;
- meetings ended (from meeting-ended), with their scheduled minutes.

Records are decoded with the schema that wrote them, resolved into the reader's schema:

- Confluent framing (processors run with a Schema Registry): confluent-kafka's
  ``AvroDeserializer`` fetches the writer schema by the id in each record.
- Avro single-object framing (no registry): the 8-byte fingerprint in each record names the
  writer schema; every released version is in ``schemas/history/`` and fastavro computes the
  fingerprints, so records written before a schema edit still decode.

No zoomstream code is used. Needs: confluent-kafka[avro,schemaregistry], fastavro, duckdb.

Example::

    python3 zoom_analytics.py --bootstrap localhost:9092 --framing confluent \\
        --registry-url http://localhost:8081 --schemas ../../schemas
"""

import argparse
import glob
import io
import json
import os
import sys
from datetime import datetime

import duckdb
import fastavro
from confluent_kafka import Consumer, KafkaError, TopicPartition
from fastavro.schema import fingerprint, to_parsing_canonical_form

SINGLE_OBJECT_MAGIC = b"\xc3\x01"


def load_schema_versions(schemas_dir, name):
    """The current schema `<name>.avsc` and every released version, by fingerprint."""
    with open(os.path.join(schemas_dir, f"{name}.avsc")) as f:
        current = json.load(f)
    files = [os.path.join(schemas_dir, f"{name}.avsc")]
    files += glob.glob(os.path.join(schemas_dir, "history", name, "*.avsc"))
    by_fingerprint = {}
    for path in files:
        with open(path) as f:
            schema = json.load(f)
        key = bytes.fromhex(fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO"))
        by_fingerprint[key] = fastavro.parse_schema(schema)
    return fastavro.parse_schema(current), by_fingerprint


class SingleObjectDecoder:
    """Avro single-object encoding: C3 01, the writer schema's fingerprint, the datum."""

    def __init__(self, schemas_dir, name):
        self.reader_schema, self.writers = load_schema_versions(schemas_dir, name)

    def __call__(self, value):
        if value[:2] != SINGLE_OBJECT_MAGIC:
            raise ValueError("not in Avro single-object encoding")
        writer = self.writers.get(value[2:10])
        if writer is None:
            raise ValueError(f"fingerprint {value[2:10].hex()} is no known version of the schema")
        return fastavro.schemaless_reader(io.BytesIO(value[10:]), writer, self.reader_schema)


class ConfluentDecoder:
    """Confluent wire format, through the Schema Registry."""

    def __init__(self, registry_url):
        from confluent_kafka.schema_registry import SchemaRegistryClient
        from confluent_kafka.schema_registry.avro import AvroDeserializer

        self.deserialize = AvroDeserializer(SchemaRegistryClient({"url": registry_url}))

    def __call__(self, value):
        return self.deserialize(value, None)


def read_topic(bootstrap, topic, decode):
    """Every committed record of `topic`, decoded, from the beginning to the end at the start."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "zoom-analytics",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
        }
    )
    metadata = consumer.list_topics(topic, timeout=10)
    partitions = sorted(metadata.topics[topic].partitions)
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    remaining = set(partitions)
    records = []
    while remaining:
        message = consumer.poll(10)
        if message is None:
            raise TimeoutError(f"no end of {topic} within 10 s")
        if message.error():
            if message.error().code() == KafkaError._PARTITION_EOF:
                remaining.discard(message.partition())
                continue
            raise RuntimeError(message.error())
        records.append(decode(message.value()))
    consumer.close()
    return records


def millis(value):
    """timestamp-millis as fastavro gives it (an aware datetime), or None, as epoch ms."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    return int(value)


def analyse(db, ended, participants, recordings):
    db.execute(
        "CREATE TABLE meetings_ended (meeting_uuid TEXT, host_id TEXT, topic TEXT, duration INTEGER)"
    )
    db.executemany(
        "INSERT INTO meetings_ended VALUES (?, ?, ?, ?)",
        [(r["meeting_uuid"], r["host_id"], r["topic"], r["duration"]) for r in ended],
    )
    db.execute(
        "CREATE TABLE participant_events (event TEXT, meeting_uuid TEXT, participant TEXT,"
        " join_ms BIGINT, leave_ms BIGINT)"
    )
    db.executemany(
        "INSERT INTO participant_events VALUES (?, ?, ?, ?, ?)",
        [
            (
                r["event"],
                r["meeting_uuid"],
                r["participant_uuid"] or r["participant_id"] or r["user_name"],
                millis(r["join_time"]),
                millis(r["leave_time"]),
            )
            for r in participants
        ],
    )
    db.execute(
        "CREATE TABLE recording_files (meeting_uuid TEXT, host_id TEXT, file_id TEXT, file_type TEXT)"
    )
    db.executemany(
        "INSERT INTO recording_files VALUES (?, ?, ?, ?)",
        [(r["meeting_uuid"], r["host_id"], r["file_id"], r["file_type"]) for r in recordings],
    )
    attendance = db.execute(
        """
        WITH stays AS (
            SELECT meeting_uuid, participant, min(join_ms) AS joined, max(leave_ms) AS left_at
            FROM participant_events GROUP BY meeting_uuid, participant)
        SELECT meeting_uuid, count(*) AS attendees,
               coalesce(sum(left_at - joined) FILTER (WHERE left_at IS NOT NULL), 0) / 60000.0 AS minutes
        FROM stays GROUP BY meeting_uuid ORDER BY meeting_uuid
        """
    ).fetchall()
    per_host = db.execute(
        """
        SELECT host_id, count(DISTINCT meeting_uuid) AS recordings, count(*) AS files
        FROM recording_files GROUP BY host_id ORDER BY host_id
        """
    ).fetchall()
    ended_summary = db.execute(
        "SELECT count(*), coalesce(sum(duration), 0) FROM meetings_ended"
    ).fetchone()
    return {
        "meetings": {
            uuid: {"attendees": attendees, "minutes_attended": float(minutes)}
            for uuid, attendees, minutes in attendance
        },
        "recordings_per_host": {
            host: {"recordings": recordings, "files": files} for host, recordings, files in per_host
        },
        "meetings_ended": {"count": ended_summary[0], "scheduled_minutes": ended_summary[1]},
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers")
    parser.add_argument("--framing", choices=["confluent", "single-object"], required=True)
    parser.add_argument("--registry-url", help="Schema Registry (Confluent framing)")
    parser.add_argument("--schemas", help="zoomstream's schemas/ folder (single-object framing)")
    parser.add_argument("--meeting-ended", default="zoom.meeting-ended")
    parser.add_argument("--participants", default="zoom.meeting-participants")
    parser.add_argument("--recordings", default="zoom.recording-completed")
    parser.add_argument("--database", default=":memory:", help="DuckDB file (default: in memory)")
    args = parser.parse_args()

    if args.framing == "confluent":
        if not args.registry_url:
            parser.error("--framing confluent needs --registry-url")
        confluent = ConfluentDecoder(args.registry_url)
        decoders = {"meeting": confluent, "participant": confluent, "recording_file": confluent}
    else:
        if not args.schemas:
            parser.error("--framing single-object needs --schemas")
        decoders = {n: SingleObjectDecoder(args.schemas, n) for n in ("meeting", "participant", "recording_file")}

    ended = read_topic(args.bootstrap, args.meeting_ended, decoders["meeting"])
    participants = read_topic(args.bootstrap, args.participants, decoders["participant"])
    recordings = read_topic(args.bootstrap, args.recordings, decoders["recording_file"])
    with duckdb.connect(args.database) as db:
        json.dump(analyse(db, ended, participants, recordings), sys.stdout, indent=2, sort_keys=True)
    print()


if __name__ == "__main__":
    main()
