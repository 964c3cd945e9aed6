#!/usr/bin/env python3
"""An AMQP 1.0 test peer on Apache Qpid Proton, standing in for Event Hubs and Service Bus.

The in-repo test broker (tests/amqp_support/broker.rs) is built on fe2o3-amqp, the same AMQP
library as twinroute's client, so a mistake both share passes unseen there. This peer speaks the
same parts of the protocol on another implementation: Proton's C engine (python-qpid-proton,
pinned in requirements.txt) does the framing, sessions, links, flow and settlement. Test support
only: it listens on 127.0.0.1 and nowhere else.

What it speaks
- SASL ANONYMOUS and PLAIN. Proton's built-in SASL offers only ANONYMOUS on a server, so the
  SASL layer is this file's own (RFC 4422 frames encoded with Proton's codec); after its outcome
  the connection is handed to Proton. PLAIN must name a configured (key name, key) when the peer
  has keys; with none, any PLAIN is accepted.
- `$cbs` put-token: answers the configured status (202, or 200: a switch) with the request's
  message-id as correlation-id; with keys configured, a SAS token whose signature does not match
  the key its `skn` names, or that has expired, gets 401. (SAS: `SharedAccessSignature
  sr=<encoded resource>&sig=<base64 HMAC-SHA256 of "<sr>\\n<se>", percent-encoded>&se=<expiry>
  &skn=<key name>`, type `servicebus.windows.net:sastoken`.)
- `$management` READ: name, created_at, partition_count, partition_ids, as the in-repo broker
  answers it (whatever the type asked for).
- A `$cbs` or `$management` request is answered on the client's link whose target is its
  reply-to; one without reply-to (the Python SDK's pyAMQP sends none) on the client's receiving
  link from the same node.
- Any other target address: a receiving link that records every message it accepts and accepts
  it. A batch message (message-format 0x80013700) is unpacked: each data section is decoded as a
  message of its own. Proton's engine does not report a transfer's message-format, so the peer
  reads the transfer frames' performatives itself on their way into Proton (Tap below).

Control: standard input and output, one JSON object per line
- Start: `python peer.py [--keys NAME:KEY]... [--partitions N] [--max-message-size BYTES]
  [--put-token-status 202] [--record FILE.ndjson] [--port 0]`. The first line on stdout is
  `{"port": P}` once it listens. Logs go to stderr.
- Each command line gets exactly one answer line, `{"ok": true, ...}` or
  `{"ok": false, "error": "..."}`:
  `{"cmd": "ping"}`
  `{"cmd": "fault", "fault": F}`: what the next entity transfers get, F one of `none` (record
  and accept), `server-busy` (reject, `com.microsoft:server-busy`), `timeout`
  (`com.microsoft:timeout`), `unauthorized` (`amqp:unauthorized-access`), `not-found`
  (`amqp:not-found`), `message-size-exceeded` (`amqp:link:message-size-exceeded`), `hold`
  (never settle), `close-connection` (cut every connection when a transfer arrives), `released`
  (settle as released: not stored, not recorded).
  `{"cmd": "put-token-status", "status": 200 | 202}`
  `{"cmd": "latency", "ms": N}`: settle each entity transfer N ms after it arrives (a reactor
  timer per transfer: other transfers, links and connections go on meanwhile).
  `{"cmd": "cut", "at": "put-token" | "attach" | "transfer", "times": N}`: cut the connection
  (the socket closes, no AMQP close) the next N times that point is reached (N 0: every time):
  a put-token request before it is answered, the attach of a link to an entity, an entity
  transfer before it is recorded or settled. `"at": null` switches every cut point off.
  `{"cmd": "cut-now"}`: cut every open connection.
  `{"cmd": "stop"}` / `{"cmd": "restart"}`: stop listening and cut every connection / listen
  again on the same port.
  `{"cmd": "received", "from": I}`: the recorded messages from index I on.
  `{"cmd": "counters"}`: put-tokens accepted and refused (`tokens_put`, `tokens_refused`),
  entity transfers (`transfers`), `$management` READs (`reads`), connections (`connections`,
  total; `open_connections`), sessions begun by clients (`sessions`, total), sessions ended
  with no link ever attached on them (`bare_sessions`: liveness probes), entity links attached
  (`links`: the clients' sending links to an entity, not `$cbs` or `$management`), SASL
  mechanisms used (`sasl`), messages recorded (`received`), transfers held (`held`).
  `{"cmd": "clear"}`: forgets the recorded messages. `{"cmd": "reset"}`: every switch back to
  its default (fault none, put-token status as started, latency 0, no cut).
- Each recorded message (also appended to --record as NDJSON): `address`, `message_format` (of
  the transfer that carried it), `batched`, `message_annotations`, `envelope_annotations` (the
  batch envelope's, for a batched message), `properties` (`message_id`, `content_type`, ...),
  `application_properties`, `body_b64` (data sections concatenated, or an amqp-value string or
  binary). AMQP values become JSON: symbols and strings as strings, binary as
  `{"binary": base64}`, timestamps as milliseconds.

Lifetime: the peer exits when its standard input closes, when its parent process dies (checked
every second) and on SIGTERM or SIGINT. Every wait inside has a timeout: a SASL exchange must end
within STEP_TIMEOUT, and a reply waiting for its reply link or for credit is dropped after it.
"""

import argparse
import base64
import collections
import hashlib
import hmac
import json
import os
import signal
import socket
import struct
import sys
import time
import urllib.parse
import uuid

from proton import (
    UNDESCRIBED,
    Array,
    Condition,
    Data,
    Delivery,
    Described,
    Endpoint,
    Handler,
    Message,
    Transport,
    int32,
    symbol,
    timestamp,
    ubyte,
    ulong,
)

from proton.reactor import Container
from proton._handlers import IOHandler

STEP_TIMEOUT = 10.0
BATCH_MESSAGE_FORMAT = 0x80013700
SAS_TOKEN_TYPE = "servicebus.windows.net:sastoken"
CREDIT = 1000
SASL_HEADER = b"AMQP\x03\x01\x00\x00"
AMQP_HEADER = b"AMQP\x00\x01\x00\x00"
REJECTIONS = {
    "server-busy": "com.microsoft:server-busy",
    "timeout": "com.microsoft:timeout",
    "unauthorized": "amqp:unauthorized-access",
    "not-found": "amqp:not-found",
    "message-size-exceeded": "amqp:link:message-size-exceeded",
}
FAULTS = {"none", "hold", "close-connection", "released", *REJECTIONS}
CUT_POINTS = {"put-token", "attach", "transfer"}
# Counters the `counters` answer always carries (0 until counted).
COUNTER_NAMES = (
    "tokens_put", "tokens_refused", "transfers", "reads", "replies", "sessions", "bare_sessions",
    "links",
)


def log(*parts):
    print("proton-peer:", *parts, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# AMQP values → JSON


def to_json(value):
    if isinstance(value, Described):
        return {"descriptor": to_json(value.descriptor), "value": to_json(value.value)}
    if isinstance(value, Array):
        return [to_json(v) for v in value.elements]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"binary": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, dict):
        return {str(to_json(k)): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if value is None or isinstance(value, bool):
        return value
    # symbol, char are str; ulong, int32, timestamp... are int; float32 is float.
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    return repr(value)


def materialize(value):
    """`value` with every binary copied out: Proton's decoder hands out memoryviews into its own
    buffer, which die with the decoder."""
    if isinstance(value, memoryview):
        return bytes(value)
    if isinstance(value, Described):
        return Described(materialize(value.descriptor), materialize(value.value))
    if isinstance(value, Array):
        return Array(value.descriptor, value.type, *[materialize(v) for v in value.elements])
    if isinstance(value, dict):
        return {materialize(k): materialize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [materialize(v) for v in value]
    return value


def decode_values(payload):
    """Every AMQP value in `payload`, in order (a message's sections)."""
    values = []
    rest = bytes(payload)
    while rest:
        data = Data()
        used = data.decode(rest)
        if used <= 0:
            raise ValueError("undecodable section")
        data.rewind()
        data.next()
        values.append(materialize(data.get_object()))
        rest = rest[used:]
    return values


def section_code(section):
    if not isinstance(section, Described):
        return None
    descriptor = section.descriptor
    if isinstance(descriptor, int):
        return int(descriptor)
    names = {
        "amqp:header:list": 0x70,
        "amqp:delivery-annotations:map": 0x71,
        "amqp:message-annotations:map": 0x72,
        "amqp:properties:list": 0x73,
        "amqp:application-properties:map": 0x74,
        "amqp:data:binary": 0x75,
        "amqp:amqp-sequence:list": 0x76,
        "amqp:amqp-value:*": 0x77,
        "amqp:footer:map": 0x78,
    }
    return names.get(str(descriptor))


PROPERTY_NAMES = [
    "message_id", "user_id", "to", "subject", "reply_to", "correlation_id", "content_type",
    "content_encoding", "absolute_expiry_time", "creation_time", "group_id", "group_sequence",
    "reply_to_group_id",
]


def decode_message(payload):
    """One encoded message → its parts, as JSON-able values."""
    message = {
        "message_annotations": {},
        "properties": {},
        "application_properties": {},
        "body_sections": [],
    }
    body = b""
    for section in decode_values(payload):
        code = section_code(section)
        value = section.value if isinstance(section, Described) else section
        if code == 0x72 and isinstance(value, dict):
            message["message_annotations"] = to_json(value)
        elif code == 0x73 and isinstance(value, list):
            message["properties"] = {
                name: to_json(v)
                for name, v in zip(PROPERTY_NAMES, value)
                if v is not None
            }
        elif code == 0x74 and isinstance(value, dict):
            message["application_properties"] = to_json(value)
        elif code == 0x75:
            message["body_sections"].append(bytes(value))
            body += bytes(value)
        elif code == 0x77:
            if isinstance(value, (bytes, bytearray)):
                body += bytes(value)
            elif isinstance(value, str):
                body += value.encode()
            message["amqp_value"] = to_json(value)
    message["body"] = body
    return message


# ---------------------------------------------------------------------------------------------
# SAS tokens, checked here independently of twinroute's own signing code


def sas_token_accepted(keys, token_type, token, now):
    if not keys:
        return True
    if token_type != SAS_TOKEN_TYPE or not isinstance(token, str):
        return False
    prefix = "SharedAccessSignature "
    if not token.startswith(prefix):
        return False
    fields = {}
    for part in token[len(prefix):].split("&"):
        name, _, value = part.partition("=")
        fields[name] = value
    try:
        resource, signature, expiry, key_name = (
            fields["sr"], fields["sig"], fields["se"], fields["skn"])
        expiry_seconds = int(expiry)
    except (KeyError, ValueError):
        return False
    if expiry_seconds <= now:
        return False
    signature = urllib.parse.unquote(signature)
    for name, key in keys:
        if name != key_name:
            continue
        mac = hmac.new(key.encode(), f"{resource}\n{expiry}".encode(), hashlib.sha256)
        if hmac.compare_digest(base64.b64encode(mac.digest()).decode(), signature):
            return True
    return False


# ---------------------------------------------------------------------------------------------
# The connection's bytes: the SASL layer (Front), then a tap reading transfer frames (Tap)


def sasl_frame(described):
    data = Data()
    data.put_object(described)
    body = data.encode()
    return struct.pack(">IBBH", 8 + len(body), 2, 1, 0) + body


class Tap:
    """The socket Proton reads and writes once SASL is done. It passes every byte through and
    reads the frame headers on the way in, to learn each transfer's message-format (which
    Proton's engine does not report): per link name, the formats of its deliveries in order."""

    def __init__(self, sock, state):
        self.sock = sock
        self.state = state
        self.buffer = bytearray()
        self.header_seen = False
        self.links = {}  # (channel, handle) → link name, for links the client sends on
        self.in_delivery = set()  # (channel, handle) in the middle of a multi-frame delivery
        self.formats = collections.defaultdict(collections.deque)

    def fileno(self):
        return self.sock.fileno()

    def recv(self, size):
        data = self.sock.recv(size)
        if data:
            try:
                self.feed(data)
            except Exception as error:  # noqa: BLE001 - a bad frame is Proton's to refuse
                log("tap: cannot read a frame:", repr(error))
        return data

    def send(self, data):
        return self.sock.send(data)

    def close(self):
        self.sock.close()

    def cut(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def next_format(self, link_name):
        queue = self.formats.get(link_name)
        return queue.popleft() if queue else None

    def feed(self, data):
        self.buffer += data
        start = 0
        if not self.header_seen:
            if len(self.buffer) < 8:
                return
            self.header_seen = True
            start = 8
        while len(self.buffer) - start >= 8:
            (size,) = struct.unpack_from(">I", self.buffer, start)
            if size < 8:
                raise ValueError(f"frame size {size}")
            if len(self.buffer) - start < size:
                break
            doff, _frame_type, channel = struct.unpack_from(">BBH", self.buffer, start + 4)
            body_start = start + doff * 4
            if body_start < start + size:
                self.frame(channel, self.buffer, body_start, start + size)
            start += size
        del self.buffer[:start]

    def frame(self, channel, buffer, begin, end):
        code = None
        if end - begin >= 3 and buffer[begin] == 0 and buffer[begin + 1] == 0x53:
            code = buffer[begin + 2]
        elif end - begin >= 10 and buffer[begin] == 0 and buffer[begin + 1] == 0x80:
            code = int.from_bytes(buffer[begin + 2:begin + 10], "big")
        if code not in (None, 0x12, 0x14, 0x16):
            return
        performative = self.performative(buffer, begin, end)
        if not isinstance(performative, Described):
            return
        fields = list(performative.value or [])
        fields += [None] * (11 - len(fields))
        descriptor = performative.descriptor
        if descriptor in (0x12, "amqp:attach:list"):
            name, handle, role = fields[0], fields[1], fields[2]
            if role is False:  # the client sends on it
                self.links[(channel, handle)] = name
        elif descriptor in (0x16, "amqp:detach:list"):
            self.links.pop((channel, fields[0]), None)
            self.in_delivery.discard((channel, fields[0]))
        elif descriptor in (0x14, "amqp:transfer:list"):
            handle, message_format, more, aborted = fields[0], fields[3], fields[5], fields[9]
            key = (channel, handle)
            if key not in self.in_delivery:
                name = self.links.get(key)
                if name is not None:
                    self.formats[name].append(
                        int(message_format) if message_format is not None else 0)
            if more and not aborted:
                self.in_delivery.add(key)
            else:
                self.in_delivery.discard(key)

    @staticmethod
    def performative(buffer, begin, end):
        # The performative is small; the payload after it can be large and is not needed.
        for limit in (begin + 512, end):
            data = Data()
            try:
                data.decode(bytes(buffer[begin:min(limit, end)]))
            except Exception:  # noqa: BLE001 - truncated: try the whole frame
                continue
            data.rewind()
            data.next()
            return materialize(data.get_object())
        return None


class Front(Handler):
    """A new connection's first bytes: the SASL exchange (ANONYMOUS or PLAIN), answered here;
    then the socket goes to Proton behind a Tap. A client that skips SASL goes to Proton at
    once. The exchange must end within STEP_TIMEOUT."""

    def __init__(self, peer, sock):
        super().__init__()
        self.peer = peer
        self.sock = sock
        self.inbox = bytearray()
        self.outbox = bytearray()
        self.stage = "header"
        self.handover = False
        self.closing = False
        container = peer.container
        self.selectable = container.selectable(handler=self, delegate=sock)
        self.selectable.reading = True
        self.selectable._transport = None
        self.selectable.deadline = time.time() + STEP_TIMEOUT
        container.update(self.selectable)

    def on_selectable_readable(self, event):
        try:
            data = self.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.close()
            return
        self.inbox += data
        try:
            self.advance()
        except Exception as error:  # noqa: BLE001 - a malformed exchange ends the connection
            log("sasl:", repr(error))
            self.close()
            return
        self.flush()

    def on_selectable_writable(self, event):
        self.flush()

    def on_selectable_expired(self, event):
        log("sasl: no outcome within", STEP_TIMEOUT, "s; closing")
        self.close()

    def advance(self):
        while True:
            if self.stage == "header":
                if len(self.inbox) < 8:
                    return
                header = bytes(self.inbox[:8])
                if header == AMQP_HEADER:
                    self.peer.sasl_used("none")
                    self.handover = True
                    return
                if header != SASL_HEADER:
                    raise ValueError(f"protocol header {header!r}")
                del self.inbox[:8]
                mechanisms = Array(UNDESCRIBED, Data.SYMBOL, symbol("ANONYMOUS"), symbol("PLAIN"))
                self.outbox += SASL_HEADER + sasl_frame(Described(ulong(0x40), [mechanisms]))
                self.stage = "init"
            elif self.stage == "init":
                if len(self.inbox) < 8:
                    return
                (size,) = struct.unpack_from(">I", self.inbox, 0)
                if len(self.inbox) < size:
                    return
                doff = self.inbox[4]
                body = bytes(self.inbox[doff * 4:size])
                del self.inbox[:size]
                init = decode_values(body)[0]
                if not isinstance(init, Described) or init.descriptor not in (
                        0x41, "amqp:sasl-init:list"):
                    raise ValueError(f"expected sasl-init, got {init!r}")
                fields = list(init.value) + [None, None, None]
                mechanism, response = str(fields[0]), fields[1]
                accepted = self.peer.sasl_accepts(mechanism, response)
                self.peer.sasl_used(mechanism if accepted else f"{mechanism} refused")
                code = 0 if accepted else 1
                self.outbox += sasl_frame(Described(ulong(0x44), [ubyte(code)]))
                if accepted:
                    self.handover = True
                else:
                    self.closing = True
                self.stage = "done"
                return
            else:
                return

    def flush(self):
        if self.outbox:
            try:
                sent = self.sock.send(self.outbox)
                del self.outbox[:sent]
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                self.close()
                return
        if self.outbox:
            self.selectable.writing = True
            self.peer.container.update(self.selectable)
            return
        self.selectable.writing = False
        if self.closing:
            self.close()
        elif self.handover:
            self.hand_over()
        else:
            self.peer.container.update(self.selectable)

    def release(self):
        # The socket lives on: the selectable goes, without closing it.
        self.selectable.release()
        self.selectable.terminate()
        self.peer.container.update(self.selectable)

    def close(self):
        if self.selectable.is_terminal:
            return
        self.selectable.terminate()
        self.peer.container.update(self.selectable)  # its final event closes the socket

    def hand_over(self):
        self.release()
        self.peer.serve(self.sock, bytes(self.inbox))


# ---------------------------------------------------------------------------------------------
# The peer


class ConnectionState:
    def __init__(self, number, tap):
        self.number = number
        self.tap = tap
        self.alive = True
        self.reply_links = {}  # reply-to address → sending link
        # $cbs / $management → the target address of the client's receiving link from it, where
        # a request without reply-to is answered.
        self.node_reply_to = {}
        self.waiting_replies = collections.defaultdict(list)  # address → [(deadline, message)]


class Peer(Handler):
    def __init__(self, args):
        super().__init__()
        self.keys = [tuple(k.split(":", 1)) for k in args.keys]
        self.partitions = args.partitions
        self.max_message_size = args.max_message_size
        self.default_status = args.put_token_status
        self.record_file = open(args.record, "a", encoding="utf-8") if args.record else None
        self.port = args.port
        self.parent = os.getppid()
        self.container = None
        self.listener = None
        self.connections = {}  # number → ConnectionState
        self.connection_count = 0
        self.received = []
        self.counters = collections.Counter()
        self.sasl = collections.Counter()
        self.held = []
        self.stdin_buffer = b""
        self.reset()

    def reset(self):
        self.fault = "none"
        self.put_token_status = self.default_status
        self.latency_ms = 0
        self.cuts = {}  # point → remaining times (0: every time)

    # -- lifetime ------------------------------------------------------------------------------

    def on_reactor_init(self, event):
        self.container = event.container
        self.listen()
        print(json.dumps({"port": self.port}), flush=True)
        stdin = StdinReader(self)
        selectable = self.container.selectable(handler=stdin, delegate=stdin)
        selectable.reading = True
        selectable._transport = None  # the IO handler then leaves it to StdinReader
        self.container.update(selectable)
        self.container.schedule(1.0, Ticker(self))

    def exit(self, code=0):
        try:
            if self.record_file:
                self.record_file.flush()
            sys.stdout.flush()
        finally:
            os._exit(code)

    def tick(self):
        if os.getppid() != self.parent:
            log("the parent process is gone; exiting")
            self.exit(0)
        now = time.time()
        for state in list(self.connections.values()):
            for address, waiting in list(state.waiting_replies.items()):
                kept = [(deadline, m) for deadline, m in waiting if deadline > now]
                if len(kept) != len(waiting):
                    log(f"connection {state.number}: dropped replies to {address} "
                        f"(no reply link or credit within {STEP_TIMEOUT} s)")
                state.waiting_replies[address] = kept
        self.container.schedule(1.0, Ticker(self))

    def listen(self):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(128)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        self.listener = Listener(self, sock)

    def stop_listening(self):
        if self.listener:
            self.listener.close()
            self.listener = None

    # -- connections ---------------------------------------------------------------------------

    def accept(self, sock):
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        Front(self, sock)

    def sasl_accepts(self, mechanism, response):
        if mechanism == "ANONYMOUS":
            return True
        if mechanism == "PLAIN":
            parts = bytes(response or b"").split(b"\x00")
            if len(parts) != 3:
                return False
            user, password = parts[1].decode(errors="replace"), parts[2].decode(errors="replace")
            return not self.keys or (user, password) in self.keys
        return False

    def sasl_used(self, mechanism):
        self.sasl[mechanism] += 1

    def serve(self, sock, already_read):
        self.connection_count += 1
        state = ConnectionState(self.connection_count, None)
        tap = Tap(sock, state)
        state.tap = tap
        self.connections[state.number] = state
        container = self.container
        connection = container.connection(self)
        connection._acceptor = self  # the IO handler then leaves the socket as it is
        connection.peer_number = state.number
        transport = Transport(Transport.SERVER)
        transport.bind(connection)
        selectable = container.selectable(delegate=tap)
        selectable._transport = transport
        transport._selectable = selectable
        if already_read:
            tap.feed(already_read)
            transport.push(already_read)
        IOHandler.update(transport, selectable, container.now)

    def state_of(self, endpoint):
        connection = endpoint if hasattr(endpoint, "peer_number") else endpoint.connection
        number = getattr(connection, "peer_number", None)
        return self.connections.get(number)

    def cut(self, state, why):
        if state is None or not state.alive:
            return
        log(f"cutting connection {state.number} ({why})")
        state.alive = False
        state.tap.cut()
        self.connections.pop(state.number, None)

    def cut_all(self, why):
        for state in list(self.connections.values()):
            self.cut(state, why)

    def cut_due(self, point):
        if point not in self.cuts:
            return False
        remaining = self.cuts[point]
        if remaining == 1:
            del self.cuts[point]
        elif remaining > 1:
            self.cuts[point] = remaining - 1
        return True

    def on_connection_remote_open(self, event):
        if event.connection.state & Endpoint.LOCAL_UNINIT:
            event.connection.container = "twinroute-proton-peer"
            event.connection.open()

    def on_connection_remote_close(self, event):
        if not event.connection.state & Endpoint.LOCAL_CLOSED:
            event.connection.close()

    def on_transport_closed(self, event):
        connection = event.connection
        number = getattr(connection, "peer_number", None) if connection else None
        state = self.connections.pop(number, None)
        if state:
            state.alive = False

    def on_session_remote_open(self, event):
        if event.session.state & Endpoint.LOCAL_UNINIT:
            self.counters["sessions"] += 1
            event.session.peer_links = 0
            event.session.open()

    def on_session_remote_close(self, event):
        session = event.session
        if getattr(session, "peer_links", None) == 0:
            # Begun and ended with no link on it: a liveness probe (a sink may check its
            # connection that way instead of a $management READ).
            self.counters["bare_sessions"] += 1
            session.peer_links = None
        if not session.state & Endpoint.LOCAL_CLOSED:
            session.close()

    def on_link_remote_open(self, event):
        link = event.link
        state = self.state_of(link)
        if state is None or not state.alive or not link.state & Endpoint.LOCAL_UNINIT:
            return
        link.source.copy(link.remote_source)
        link.target.copy(link.remote_target)
        address = link.remote_target.address or ""
        session = link.session
        session.peer_links = (getattr(session, "peer_links", None) or 0) + 1
        if link.is_receiver:
            if address not in ("$cbs", "$management"):
                if self.cut_due("attach"):
                    self.cut(state, f"attach of {address}")
                    return
                self.counters["links"] += 1
                link.max_message_size = self.max_message_size
            link.open()
            link.flow(CREDIT)
        else:
            link.open()
            state.reply_links[address] = link
            source = link.remote_source.address or ""
            if source in ("$cbs", "$management"):
                state.node_reply_to[source] = address
            self.send_waiting(state, address)

    def on_link_remote_close(self, event):
        link = event.link
        state = self.state_of(link)
        if state and not link.is_receiver:
            address = link.remote_target.address or ""
            if state.reply_links.get(address) is link:
                del state.reply_links[address]
                source = link.remote_source.address or ""
                if state.node_reply_to.get(source) == address:
                    del state.node_reply_to[source]
        if not link.state & Endpoint.LOCAL_CLOSED:
            link.close()

    def on_link_flow(self, event):
        link = event.link
        state = self.state_of(link)
        if state and not link.is_receiver:
            self.send_waiting(state, link.remote_target.address or "")

    def on_delivery(self, event):
        delivery = event.delivery
        link = delivery.link
        if not link.is_receiver:
            # A reply the client has settled or given a state to.
            if delivery.remote_state or delivery.settled:
                delivery.settle()
            return
        if delivery.partial and not delivery.aborted:
            return
        state = self.state_of(link)
        if state is None or not state.alive:
            return
        message_format = state.tap.next_format(link.name)
        if delivery.aborted:
            delivery.settle()
            return
        payload = link.recv(delivery.pending) or b""
        link.advance()
        if link.credit < CREDIT // 2:
            link.flow(CREDIT - link.credit)
        address = link.target.address or ""
        if address in ("$cbs", "$management"):
            self.request(state, delivery, payload)
        else:
            self.transfer(state, delivery, address, payload, message_format)

    # -- $cbs and $management ------------------------------------------------------------------

    def request(self, state, delivery, payload):
        request = Message()
        request.decode(payload)
        properties = request.properties or {}
        operation = properties.get("operation")
        if operation == "put-token" and self.cut_due("put-token"):
            self.cut(state, "put-token request")
            return
        delivery.update(Delivery.ACCEPTED)
        delivery.settle()
        body = None
        if operation == "put-token":
            accepted = sas_token_accepted(
                self.keys, properties.get("type"), request.body, time.time())
            if accepted:
                self.counters["tokens_put"] += 1
                status = self.put_token_status
            else:
                self.counters["tokens_refused"] += 1
                status = 401
        elif operation == "READ":
            self.counters["reads"] += 1
            status = 200
            ids = [str(p) for p in range(self.partitions)]
            body = {
                "name": properties.get("name", ""),
                "created_at": timestamp(1_700_000_000_000),
                "partition_count": int32(self.partitions),
                "partition_ids": Array(UNDESCRIBED, Data.STRING, *ids),
            }
        else:
            status = 501
        # Without reply-to (the Python SDK's pyAMQP sends none, and Event Hubs answers it), the
        # answer goes to the client's receiving link from the same node.
        reply_to = request.reply_to or state.node_reply_to.get(delivery.link.target.address or "")
        if not reply_to:
            return
        reply = Message(
            correlation_id=request.id,
            properties={
                "status-code": int32(status),
                "status-description": "OK" if status < 300 else "refused",
            },
            body=body,
        )
        state.waiting_replies[reply_to].append((time.time() + STEP_TIMEOUT, reply))
        self.send_waiting(state, reply_to)

    def send_waiting(self, state, address):
        link = state.reply_links.get(address)
        waiting = state.waiting_replies.get(address)
        if link is None or not waiting:
            return
        while waiting and link.credit > 0:
            _, reply = waiting.pop(0)
            self.counters["replies"] += 1
            delivery = link.delivery(str(self.counters["replies"]).encode())
            link.send(reply.encode())
            link.advance()

    # -- entity transfers ----------------------------------------------------------------------

    def transfer(self, state, delivery, address, payload, message_format):
        self.counters["transfers"] += 1
        if self.cut_due("transfer"):
            self.cut(state, f"transfer to {address}")
            return
        fault = self.fault
        if fault == "close-connection":
            self.cut_all(f"close-connection fault, transfer to {address}")
            return
        if fault == "hold":
            self.held.append(delivery)
            return

        def settle():
            if not state.alive:
                return
            if fault == "none":
                self.record(address, payload, message_format)
                delivery.update(Delivery.ACCEPTED)
            elif fault == "released":
                delivery.update(Delivery.RELEASED)
            else:
                delivery.local.condition = Condition(
                    REJECTIONS[fault], "refused by the Proton test peer")
                delivery.update(Delivery.REJECTED)
            delivery.settle()

        if self.latency_ms > 0:
            self.container.schedule(self.latency_ms / 1000.0, Later(settle))
        else:
            settle()

    def record(self, address, payload, message_format):
        envelope = decode_message(payload)
        if message_format == BATCH_MESSAGE_FORMAT:
            inner = [(decode_message(section), True) for section in envelope["body_sections"]]
        else:
            inner = [(envelope, False)]
        for message, batched in inner:
            entry = {
                "address": address,
                "message_format": message_format,
                "batched": batched,
                "message_annotations": message["message_annotations"],
                "envelope_annotations": envelope["message_annotations"] if batched else None,
                "properties": message["properties"],
                "application_properties": message["application_properties"],
                "body_b64": base64.b64encode(message["body"]).decode(),
            }
            self.received.append(entry)
            if self.record_file:
                self.record_file.write(json.dumps(entry) + "\n")
        if self.record_file:
            self.record_file.flush()

    # -- control -------------------------------------------------------------------------------

    def command(self, line):
        try:
            request = json.loads(line)
            name = request.get("cmd")
            answer = self.run_command(name, request)
            answer["ok"] = True
        except Exception as error:  # noqa: BLE001 - every command gets an answer
            answer = {"ok": False, "error": f"{type(error).__name__}: {error}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()

    def run_command(self, name, request):
        if name == "ping":
            return {}
        if name == "fault":
            fault = request["fault"]
            if fault not in FAULTS:
                raise ValueError(f"unknown fault {fault!r}; one of {sorted(FAULTS)}")
            self.fault = fault
            return {}
        if name == "put-token-status":
            self.put_token_status = int(request["status"])
            return {}
        if name == "latency":
            self.latency_ms = max(0, int(request["ms"]))
            return {}
        if name == "cut":
            point = request.get("at")
            if point is None:
                self.cuts.clear()
                return {}
            if point not in CUT_POINTS:
                raise ValueError(f"unknown cut point {point!r}; one of {sorted(CUT_POINTS)}")
            self.cuts[point] = max(0, int(request.get("times", 1)))
            return {}
        if name == "cut-now":
            self.cut_all("cut-now")
            return {}
        if name == "stop":
            self.stop_listening()
            self.cut_all("stop")
            return {}
        if name == "restart":
            self.stop_listening()
            self.cut_all("restart")
            self.listen()
            return {"port": self.port}
        if name == "received":
            start = int(request.get("from", 0))
            return {"received": self.received[start:], "total": len(self.received)}
        if name == "counters":
            counters = {name: 0 for name in COUNTER_NAMES}
            counters.update(self.counters)
            counters.update(
                connections=self.connection_count,
                open_connections=len(self.connections),
                sasl=dict(self.sasl),
                received=len(self.received),
                held=len(self.held),
            )
            return {"counters": counters}
        if name == "clear":
            self.received.clear()
            return {}
        if name == "reset":
            self.reset()
            return {}
        raise ValueError(f"unknown command {name!r}")


class Listener(Handler):
    def __init__(self, peer, sock):
        super().__init__()
        self.peer = peer
        self.sock = sock
        self.selectable = peer.container.selectable(handler=self, delegate=sock)
        self.selectable.reading = True
        self.selectable._transport = None
        peer.container.update(self.selectable)

    def on_selectable_readable(self, event):
        for _ in range(64):
            try:
                sock, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:
                log("accept:", repr(error))
                return
            self.peer.accept(sock)

    def close(self):
        if not self.selectable.is_terminal:
            self.selectable.terminate()
            self.peer.container.update(self.selectable)


class StdinReader(Handler):
    def __init__(self, peer):
        super().__init__()
        self.peer = peer
        self.buffer = b""

    def fileno(self):
        return sys.stdin.fileno()

    def close(self):
        pass

    def on_selectable_readable(self, event):
        try:
            data = os.read(sys.stdin.fileno(), 65536)
        except (BlockingIOError, InterruptedError):
            return
        if not data:
            log("standard input closed; exiting")
            self.peer.exit(0)
        self.buffer += data
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            if line.strip():
                self.peer.command(line.decode())


class Ticker(Handler):
    def __init__(self, peer):
        super().__init__()
        self.peer = peer

    def on_timer_task(self, event):
        self.peer.tick()


class Later(Handler):
    def __init__(self, action):
        super().__init__()
        self.action = action

    def on_timer_task(self, event):
        self.action()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keys", action="append", default=[], metavar="NAME:KEY")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--max-message-size", type=int, default=1024 * 1024)
    parser.add_argument("--put-token-status", type=int, default=202)
    parser.add_argument("--record", metavar="FILE.ndjson")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    for key in args.keys:
        if ":" not in key:
            parser.error(f"--keys {key!r}: expected NAME:KEY")
    peer = Peer(args)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: peer.exit(0))
    Container(peer).run()


if __name__ == "__main__":
    main()
