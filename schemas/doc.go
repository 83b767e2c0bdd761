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
// Fingerprints follow the Avro specification, which strips logicalType from
// the canonical form, and match Apache Avro's Java implementation. hamba/avro's
// own Schema.String keeps logicalType, so its fingerprints of schemas with
// timestamp-millis fields differ from Java's. Use CanonicalForm, Fingerprint
// and Header from this package, never the hamba equivalents.
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
//     gets a line in its union's member list (unions.go). Then run go test
//     ./schemas/.
//
// The tests enforce BACKWARD_TRANSITIVE compatibility: the current schema must
// be a compatible reader for every version in history, and data written with
// each of them must decode.
package schemas
