"""The processor's transform as a Python team would write it: route each raw Zoom webhook to the
sources of schemas/sources.toml whose events it matches, map it to the source's record shape
(recording.completed split into one record per kept file) and encode it as Avro single-object
with fastavro. Shared by peer_confluent.py and peer_quix.py.

Classification is the simple one a team would write first: the wire event itself (no by_me /
for_me variants; the benchmark runs without a configured user, so the Rust processor derives
none either). Output counts are checked against the Rust processor's by the suite.
"""

import hashlib
import io
import json
import os
import tomllib
from datetime import datetime

import fastavro
from fastavro.schema import to_parsing_canonical_form

# --- Avro single-object framing: C3 01 + CRC-64-AVRO (Rabin) fingerprint, little-endian.
_EMPTY = 0xC15D213AA4D7A795
_TABLE = []
for _i in range(256):
    _fp = _i
    for _ in range(8):
        _fp = (_fp >> 1) ^ (_EMPTY & -(_fp & 1))
    _TABLE.append(_fp)


def rabin(data: bytes) -> int:
    fp = _EMPTY
    for b in data:
        fp = (fp >> 8) ^ _TABLE[(fp ^ b) & 0xFF]
    return fp


def single_object_header(parsed_schema) -> bytes:
    canonical = to_parsing_canonical_form(parsed_schema).encode()
    return b"\xc3\x01" + rabin(canonical).to_bytes(8, "little")


# --- Where each field of each shape comes from (mirrors schemas/src/shape/fields.rs).
COMMON = {
    "event_id": ("event_id",), "event": ("event",), "wire_event": ("body", "event"),
    "app": ("app",), "event_ts": ("ts", "body", "event_ts"), "account_id": ("payload", "account_id"),
    "received_at": ("received_at",),
}
SCHEDULED = {
    "host_id": ("object", "host_id"), "topic": ("object", "topic"), "type": ("object", "type"),
    "start_time": ("ts", "object", "start_time"), "end_time": ("ts", "object", "end_time"),
    "timezone": ("object", "timezone"), "duration": ("object", "duration"),
    "operator": ("payload", "operator"), "operator_id": ("payload", "operator_id"),
    "operation": ("payload", "operation"), "object_json": ("json", "payload", "object"),
    "old_object_json": ("json", "payload", "old_object"),
}
SHAPES = {
    "zoomstream.Meeting": {**COMMON, **SCHEDULED, "meeting_id": ("str", "object", "id"), "meeting_uuid": ("object", "uuid")},
    "zoomstream.Webinar": {**COMMON, **SCHEDULED, "webinar_id": ("str", "object", "id"), "webinar_uuid": ("object", "uuid")},
    "zoomstream.Participant": {
        **COMMON,
        "meeting_id": ("str", "object", "id"), "meeting_uuid": ("object", "uuid"), "topic": ("object", "topic"),
        "host_id": ("object", "host_id"), "user_id": ("participant", "user_id"),
        "user_name": ("participant", "user_name"), "participant_id": ("participant", "id"),
        "participant_uuid": ("participant", "participant_uuid"),
        "participant_user_id": ("participant", "participant_user_id"), "email": ("participant", "email"),
        "registrant_id": ("participant", "registrant_id"), "customer_key": ("participant", "customer_key"),
        "phone_number": ("participant", "phone_number"), "join_time": ("ts", "participant", "join_time"),
        "leave_time": ("ts", "participant", "leave_time"), "leave_reason": ("participant", "leave_reason"),
        "object_json": ("json", "payload", "object"),
    },
    "zoomstream.RecordingFile": {
        **COMMON,
        "meeting_id": ("str", "object", "id"), "meeting_uuid": ("object", "uuid"), "topic": ("object", "topic"),
        "host_id": ("object", "host_id"), "host_email": ("object", "host_email"),
        "start_time": ("ts", "object", "start_time"), "file_id": ("file", "id"),
        "file_type": ("file", "file_type"), "file_extension": ("file", "file_extension"),
        "file_size": ("file", "file_size"), "status": ("file", "status"),
        "recording_type": ("file", "recording_type"), "recording_start": ("ts", "file", "recording_start"),
        "recording_end": ("ts", "file", "recording_end"), "play_url": ("file", "play_url"),
        "download_url": ("file", "download_url"), "download_token": ("body", "download_token"),
        "download_url_with_token": ("url_with_token",),
    },
    "zoomstream.User": {
        **COMMON, "user_id": ("str", "object", "id"), "email": ("object", "email"),
        "first_name": ("object", "first_name"), "last_name": ("object", "last_name"),
        "display_name": ("object", "display_name"), "type": ("object", "type"), "status": ("object", "status"),
        "date_time": ("ts", "object", "date_time"), "operator": ("payload", "operator"),
        "operator_id": ("payload", "operator_id"), "operation": ("payload", "operation"),
        "object_json": ("json", "payload", "object"), "old_object_json": ("json", "payload", "old_object"),
    },
    "zoomstream.Account": {
        **COMMON, "object_id": ("str", "object", "id"), "account_name": ("object", "account_name"),
        "account_alias": ("object", "account_alias"), "owner_id": ("object", "owner_id"),
        "owner_email": ("object", "owner_email"), "created_at": ("ts", "object", "created_at"),
        "operator": ("payload", "operator"), "operator_id": ("payload", "operator_id"),
        "operation": ("payload", "operation"), "object_json": ("json", "payload", "object"),
        "old_object_json": ("json", "payload", "old_object"),
    },
    "zoomstream.Envelope": {
        **COMMON, "object_id": ("str", "object", "id"), "payload_json": ("json", "body", "payload"),
        "body_json": ("json", "body", None),
    },
}


def rfc3339_ms(value):
    if value is None or value == "":
        return None
    if isinstance(value, int):
        return value
    return int(datetime.fromisoformat(value).timestamp() * 1000)


class Source:
    def __init__(self, spec, base_dir):
        self.name = spec["name"]
        self.app = spec["app"]
        self.events = spec.get("events", [])
        self.extra_events = set(spec.get("extra_events", []))
        self.topic = spec["topic"]
        with open(os.path.join(base_dir, spec["schema"])) as f:
            raw_schema = json.load(f)
        self.schema = fastavro.parse_schema(raw_schema)
        self.shape = raw_schema["namespace"] + "." + raw_schema["name"]
        self.fields = [f["name"] for f in raw_schema["fields"]]
        # Shapes the benchmark's load never reaches (meeting summaries, chat, phone) have no table:
        # building one of their records fails loudly instead of writing a wrong record.
        self.table = SHAPES.get(self.shape)
        self.header = single_object_header(self.schema)
        options = spec.get("options", {})
        self.file_types = options.get("file_types")
        self.include_audio = options.get("include_audio", False)
        self.include_chat = options.get("include_chat", False)

    def takes(self, name):
        if name in self.extra_events:
            return True
        for pattern in self.events:
            if pattern.endswith("*") and name.startswith(pattern[:-1]) or pattern == name:
                return True
        return False

    def keeps(self, file_type):
        if self.file_types is not None:
            return file_type in self.file_types
        if file_type == "M4A":
            return self.include_audio
        if file_type == "CHAT":
            return self.include_chat
        return True

    def encode(self, record):
        out = io.BytesIO()
        out.write(self.header)
        fastavro.schemaless_writer(out, self.schema, record)
        return out.getvalue()


def load_sources(path):
    with open(path, "rb") as f:
        spec = tomllib.load(f)
    base = os.path.dirname(os.path.abspath(path))
    return [Source(s, base) for s in spec["source"]]


def derived_id(parent, part):
    return hashlib.sha256(parent.encode() + b"\0" + part.encode()).hexdigest()[:32]


def partition_key(payload):
    obj = payload.get("object") or {}
    for v in (obj.get("uuid"), obj.get("id"), payload.get("account_id")):
        if isinstance(v, str) and v:
            return v
        if isinstance(v, int):
            return str(v)
    return None


class Router:
    def __init__(self, sources):
        self.sources = sources
        self.cache = {}

    def routes(self, app, event):
        key = (app, event)
        if key not in self.cache:
            self.cache[key] = [s for s in self.sources if s.app == app and s.takes(event)]
        return self.cache[key]

    def transform(self, value: bytes, headers: dict):
        """[(topic, key, avro bytes, headers)] for one raw record."""
        app = headers.get("zoomstream-app")
        body = json.loads(value)
        event = body.get("event")
        event_id = headers.get("zoomstream-event-id")
        received_at = headers.get("zoomstream-received-at")
        received_at = int(received_at) if received_at else None
        payload = body.get("payload") or {}
        obj = payload.get("object") or {}
        ctx = {
            "body": body, "payload": payload, "object": obj,
            "participant": obj.get("participant") or {},
        }
        out = []
        for source in self.routes(app, event):
            if source.shape == "zoomstream.RecordingFile":
                for f in obj.get("recording_files") or []:
                    if f.get("status") != "completed" or not source.keeps(f.get("file_type")):
                        continue
                    ctx["file"] = f
                    rid = derived_id(event_id, f["id"])
                    rec = self.build(source, ctx, app, event, rid, received_at)
                    out.append((source.topic, f["id"], source.encode(rec), self.headers(source, app, event, rid)))
            else:
                rec = self.build(source, ctx, app, event, event_id, received_at)
                out.append((source.topic, partition_key(payload), source.encode(rec), self.headers(source, app, event, event_id)))
        return out

    @staticmethod
    def headers(source, app, event, event_id):
        return [("zoomstream-app", app), ("zoomstream-event", event), ("zoomstream-event-id", event_id), ("zoomstream-source", source.name)]

    @staticmethod
    def build(source, ctx, app, event, event_id, received_at):
        if source.table is None:
            raise ValueError(f"no field table for {source.shape} (source {source.name})")
        rec = {}
        for name in source.fields:
            spec = source.table.get(name)
            if spec is None:
                continue
            kind = spec[0]
            if kind == "event_id":
                v = event_id
            elif kind == "event":
                v = event
            elif kind == "app":
                v = app
            elif kind == "received_at":
                v = received_at
            elif kind == "url_with_token":
                url, token = ctx["file"].get("download_url"), ctx["body"].get("download_token")
                v = f"{url}{'&' if '?' in url else '?'}access_token={token}" if url and token else None
            elif kind == "ts":
                v = rfc3339_ms(ctx[spec[1]].get(spec[2]))
            elif kind == "json":
                v = ctx[spec[1]] if spec[2] is None else ctx[spec[1]].get(spec[2])
                v = json.dumps(v, separators=(",", ":")) if v is not None else None
            elif kind == "str":
                v = ctx[spec[1]].get(spec[2])
                v = str(v) if v is not None else None
            else:
                v = ctx[kind].get(spec[1])
            rec[name] = v
        return rec
