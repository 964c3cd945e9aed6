#!/usr/bin/env python3
"""Sends events with the official Python Event Hubs producer (azure-eventhub, pinned in
benches/requirements.txt) and prints its rate as one JSON line: the reference twinroute's AMQP
figures are compared with (benches/amqp_figures.rs).

Usage: eventhub_producer.py --connection-string CS --events FILE.ndjson --batch N
       [--max-seconds S]

- The connection string names the test peer with the emulators' convention
  (`Endpoint=sb://127.0.0.1:PORT;...;EntityPath=HUB;UseDevelopmentEmulator=true`): plain AMQP,
  no TLS. Traffic goes to that address only.
- FILE holds one event per line, as twinroute sends it: `{"id", "partitionKey", "contentType",
  "properties": {name: value, ...}, "body": text}` (the CloudEvents AMQP binding: `cloudEvents:`
  application properties, the data JSON as the body, the event id as message-id).
- `--batch 1`: each event alone, `send_event` with its partition key, one after another (the
  SDK's synchronous producer waits for each settlement).
- `--batch N`: the events taken N at a time in order; each group of N split by partition key
  (groups in order of first appearance), each part one `EventDataBatch` with that partition key
  (a new batch where one is full), sent with `send_batch`. This is what twinroute does with
  `maxEventsPerBatch` N on an Event Hub.
- Sending stops after `--max-seconds` (default 30) even if events remain; what was sent is what
  is counted.

Output, on stdout: `{"events": sent, "messages": transfers, "seconds": s, "events_per_second":
r}`, timed from just before the first send (which opens the connection, as twinroute's first
attempt does) to the last settlement.

Two changes to the SDK, so that it can reach a peer on loopback at all; what it sends, and how,
is untouched:
- Decoding. azure-eventhub 5.15.1's own AMQP stack (pyAMQP) reads the fields of an incoming
  performative by position and fails (IndexError on the peer's `open`) when the sender omitted
  trailing null fields, which AMQP 1.0 allows (part 1, section 1.4) and both test peers do (Qpid
  Proton, and fe2o3-amqp under the in-repo broker); Event Hubs itself sends every field, so the
  SDK never meets this in Azure. Upstream fixed it after 5.15.1 (Azure/azure-sdk-for-python pull
  request 47660, "Fix pyAMQP decode of performatives with omitted trailing null fields").
  `pad_omitted_fields` below does the same here: it wraps the frame decoder so every
  performative has its full field count, an omitted or null field taking its AMQP default.
- TCP_MAXSEG. On connecting, pyAMQP reads each TCP option it knows from the socket and sets it
  again; on loopback Linux can report a maximum segment size of 32768, one more than it accepts,
  so the connect fails with EINVAL and the SDK retries after a back-off (which would count
  against its rate). TCP_MAXSEG is left out of that copy (setting the value the socket already
  has changes nothing where it works).
"""

import argparse
import json
import sys
import time

from azure.eventhub import EventData, EventHubProducerClient
from azure.eventhub._pyamqp import _transport as pyamqp_transport

# Per performative (descriptor code): its field count and the defaults AMQP 1.0 gives fields that
# may be omitted (index → value). Transport performatives (part 2, section 2.7) and SASL frames
# (part 5, section 5.3.3).
PERFORMATIVES = {
    0x10: (10, {2: 4294967295, 3: 65535}),  # open: max-frame-size, channel-max
    0x11: (8, {4: 4294967295}),  # begin: handle-max
    0x12: (14, {3: 2, 4: 0, 8: False}),  # attach: snd/rcv-settle-mode, incomplete-unsettled
    0x13: (11, {8: False, 9: False}),  # flow: drain, echo
    0x14: (11, {5: False, 8: False, 9: False, 10: False}),  # transfer: more, resume, aborted, batchable
    0x15: (6, {3: False, 5: False}),  # disposition: settled, batchable
    0x16: (3, {1: False}),  # detach: closed
    0x17: (1, {}),  # end
    0x18: (1, {}),  # close
    0x40: (1, {}),  # sasl-mechanisms
    0x41: (3, {}),  # sasl-init
    0x42: (1, {}),  # sasl-challenge
    0x43: (1, {}),  # sasl-response
    0x44: (2, {}),  # sasl-outcome
}


def pad_omitted_fields(decode_frame):
    """`decode_frame` whose performatives always have every field (see the module's doc)."""

    def decode(data):
        frame_type, fields = decode_frame(data)
        shape = PERFORMATIVES.get(frame_type)
        if shape is None:
            return frame_type, fields
        count, defaults = shape
        payload = []
        if frame_type == 0x14:  # the transfer's payload comes after its fields
            payload = [fields.pop()]
        fields = list(fields) + [None] * (count - len(fields))
        for index, default in defaults.items():
            if fields[index] is None:
                fields[index] = default
        return frame_type, fields + payload

    return decode


pyamqp_transport.decode_frame = pad_omitted_fields(pyamqp_transport.decode_frame)
pyamqp_transport.KNOWN_TCP_OPTS.discard("TCP_MAXSEG")


def event_data(event):
    data = EventData(event["body"].encode())
    data.properties = dict(event["properties"])
    data.content_type = event["contentType"]
    data.message_id = event["id"]
    return data


def groups_by_key(events):
    """`events` grouped by partition key, groups in order of first appearance."""
    groups = {}
    for event in events:
        groups.setdefault(event["partitionKey"], []).append(event)
    return list(groups.items())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connection-string", required=True)
    parser.add_argument("--events", required=True)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--max-seconds", type=float, default=30.0)
    args = parser.parse_args()
    with open(args.events, encoding="utf-8") as lines:
        events = [json.loads(line) for line in lines if line.strip()]
    batch = max(1, args.batch)

    producer = EventHubProducerClient.from_connection_string(args.connection_string)
    sent = messages = 0
    with producer:
        started = time.monotonic()
        deadline = started + args.max_seconds
        if batch == 1:
            for event in events:
                if time.monotonic() >= deadline:
                    break
                producer.send_event(event_data(event), partition_key=event["partitionKey"])
                sent += 1
                messages += 1
        else:
            for start in range(0, len(events), batch):
                if time.monotonic() >= deadline:
                    break
                for key, group in groups_by_key(events[start:start + batch]):
                    pending = list(group)
                    while pending:
                        data_batch = producer.create_batch(partition_key=key)
                        taken = 0
                        for event in pending:
                            try:
                                data_batch.add(event_data(event))
                            except ValueError:  # full
                                break
                            taken += 1
                        if taken == 0:
                            raise SystemExit(f"event {pending[0]['id']} does not fit a batch")
                        producer.send_batch(data_batch)
                        sent += taken
                        messages += 1
                        pending = pending[taken:]
        seconds = time.monotonic() - started
    rate = sent / seconds if seconds > 0 else 0.0
    print(json.dumps({
        "events": sent,
        "messages": messages,
        "seconds": round(seconds, 6),
        "events_per_second": round(rate, 3),
    }), flush=True)


if __name__ == "__main__":
    sys.exit(main())
