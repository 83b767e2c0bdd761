// Package schemas is the Avro layer of the wire contract: the four envelope
// schemas (auth_request.avsc, auth_response.avsc, auth_event.avsc and
// auth_notification.avsc, embedded in the binary), the Go types that mirror
// them, and a Codec that frames them on Kafka.
//
// # Framing
//
// The Codec writes Avro single-object encoding: the marker bytes C3 01, the
// eight-byte little-endian CRC-64-AVRO fingerprint of the writer schema's
// Parsing Canonical Form, then the Avro binary body. It reads that framing for
// the current schema and for every earlier published version of the envelope,
// and, when a SchemaRegistry is configured, the Confluent framing (a zero
// byte, a four-byte big-endian schema id, then the body). Data written with an
// older schema is resolved into the current Go types.
//
// The writer schema is not always the current one: each message is written
// with the oldest published version of its envelope that carries it without
// loss, so that a client built against that version reads it. A version
// carries a message when its envelope record has the current fields, except
// that its union of records (operation, result, payload) and its enum
// (status, kind) may end earlier; when the message's record is in that
// union with the same definition as today (one that has gained a field
// since is not, nor one whose own enum has gained a symbol); and when the
// message's status or kind is one of that enum's symbols. So a message that
// v1 carries is written with v1, byte for byte as before any later version
// existed, while a message of a record appended or changed in v2 is written
// with v2: a Login request, a LoginResult reply and a LoginSucceeded event
// carry v1's fingerprint; a Refresh request, a Done reply, a SessionRevoked
// event and, since auth_event v2 appended symbols to its reason, every
// LoginFailed event carry v2's. NewCodec works out the choice for every
// record and symbol once; encoding looks it up.
//
// Clients must therefore know every published version, not only the newest:
// a decoder registers each file under history/<envelope>/ (with Java's
// BinaryMessageDecoder, addSchema for each version besides the one it is
// built with) and resolves what it reads into its own reader schema. A
// decoder that knows only v1 reads every message that v1 carries, and fails
// with an unknown fingerprint on any other: it needs the newer version to
// understand such a message anyway.
//
// Fingerprints follow the Avro specification, which strips logicalType from
// the canonical form, and match Apache Avro's Java implementation. hamba/avro's
// own Schema.String keeps logicalType, so its fingerprints of schemas with
// timestamp-millis fields differ from Java's. Use CanonicalForm, Fingerprint
// and Header from this package, never the hamba equivalents.
//
// # Event headers
//
// Events on auth.events follow the CloudEvents 1.0 Kafka protocol binding
// in binary content mode: the value is the AuthEvent, single-object
// encoded, and the event's attributes travel as headers, so that consumers
// route, filter and trace events without decoding them. EventHeaders
// writes them, in this order, each value UTF-8 text:
//
//   - ce_specversion: "1.0".
//   - ce_id: the eventId.
//   - ce_source: a URI-reference naming the worker that published it;
//     ce_source and ce_id together identify the event.
//   - ce_type: "authworker." and the payload record's name, such as
//     "authworker.UserRegistered" (EventType).
//   - ce_time: occurredAt in RFC 3339, UTC, with milliseconds, such as
//     "2023-11-14T22:13:20.123Z".
//   - ce_subject: the userId; absent when it is null.
//   - content-type: "application/avro".
//   - traceparent: the W3C Trace Context header of the request or message
//     that caused the event, when it carried one of version 00 that
//     ValidTraceparent accepts; an invalid one is dropped, not passed on.
//
// Apart from ce_source and traceparent, the headers repeat what the value
// holds, so a consumer that decodes the value loses nothing by ignoring
// them; none carries a password, token or code.
//
// # Changing a schema
//
// Every version of an envelope that was ever published is kept under
// history/<envelope>/vN.avsc, numbered from 1 without gaps, and the newest of
// them is a byte-for-byte copy of the current file. Files under history/ are
// never edited or deleted: producers may still be writing them. To change a
// schema:
//
//  1. Edit the current file (auth_request.avsc, ...). It must still read
//     everything any earlier version wrote: add fields only with a default,
//     never rename a field or a type without an alias, never remove a union
//     member or an enum symbol. New operations (Refresh, Logout, ...) are
//     appended to the union.
//  2. Copy the edited file to history/<envelope>/v<N+1>.avsc and add its
//     fingerprint to the table in TestHistoryIsFrozen.
//  3. Mirror the change in the Go types (types.go); a new union member also
//     gets a line in its union's member list (unions.go). Regenerate
//     testdata/java-reference.txt with testdata/JavaReference.java, which
//     must leave every existing line but the current schema's canonical
//     form and fingerprint as it was. Then run go test ./schemas/.
//
// The tests enforce BACKWARD_TRANSITIVE compatibility: the current schema must
// be a compatible reader for every version in history, and data written with
// each of them must decode.
//
// Publishing a version does not move existing messages to it: the codec keeps
// writing each message with the oldest version that carries it (see
// Framing), so only messages that need the new version carry its
// fingerprint. Changing a record that is already published (adding a field
// to LoginResult, say, or a symbol to an enum of its own, as auth_event v2
// did to LoginFailed) moves that record's messages to the new version, and
// changing any other field of an envelope moves all its messages there; both
// make older clients fail on those messages, so prefer a new record, or a
// new symbol of status or kind. Before a message needs a new version, clients must have it:
// publish the history file to them (each registers every version) first.
package schemas
