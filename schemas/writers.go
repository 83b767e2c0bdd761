package schemas

import (
	"fmt"
	"reflect"
	"slices"

	"github.com/hamba/avro/v2"
)

// writer is a schema the codec writes messages with, and its single-object
// header.
type writer struct {
	version int // its number in history; 0 for a current schema missing there
	schema  avro.Schema
	header  [HeaderSize]byte
}

// writerKey is what decides which version writes a message: the Avro full
// name of its union record and the symbol of its enum field, each "" for an
// envelope without one.
type writerKey struct {
	member string
	symbol string
}

// variants names the fields of e that a later version may extend, whose
// current definitions are supersets of the earlier ones: its union of
// records (members are appended) and its enum (symbols are appended), ""
// when it has none. A message's record and symbol in them decide which
// version can write it.
func (e Envelope) variants() (union, enum string) {
	switch e {
	case EnvelopeRequest:
		return "operation", ""
	case EnvelopeResponse:
		return "result", "status"
	case EnvelopeEvent:
		return "payload", ""
	case EnvelopeNotification:
		return "", "kind"
	default:
		return "", ""
	}
}

// carrier is what one published version can write of messages of the
// current schema without loss: the union records whose definition is the
// current one, and the enum symbols it has.
type carrier struct {
	members map[string]bool
	symbols map[string]bool
}

// carries returns what published version old can carry of current, an
// envelope whose extensible fields are union and enum. ok is false when old
// cannot write current's messages at all: its record is named differently
// or has other fields, or its union or enum is not a prefix of the current
// one. A record of the union is carried only if its Parsing Canonical Form,
// standing alone, is the same in both: one that gained a field since is not.
func carries(current, old avro.Schema, union, enum string) (c carrier, ok bool) {
	cur, isRecord := current.(*avro.RecordSchema)
	prev, wasRecord := old.(*avro.RecordSchema)
	if !isRecord || !wasRecord || cur.FullName() != prev.FullName() || len(cur.Fields()) != len(prev.Fields()) {
		return carrier{}, false
	}
	c = carrier{members: map[string]bool{"": union == ""}, symbols: map[string]bool{"": enum == ""}}
	for i, f := range cur.Fields() {
		pf := prev.Fields()[i]
		if f.Name() != pf.Name() {
			return carrier{}, false
		}
		switch f.Name() {
		case union:
			if !carriesMembers(c.members, deref(f.Type()), deref(pf.Type())) {
				return carrier{}, false
			}
		case enum:
			if !carriesSymbols(c.symbols, deref(f.Type()), deref(pf.Type())) {
				return carrier{}, false
			}
		default:
			if standaloneCanonicalForm(f.Type()) != standaloneCanonicalForm(pf.Type()) {
				return carrier{}, false
			}
		}
	}
	return c, true
}

// carriesMembers adds to members the records of union old whose definition
// is the one in union current, and reports whether old's records are the
// first of current's, in order.
func carriesMembers(members map[string]bool, current, old avro.Schema) bool {
	cu, ok1 := current.(*avro.UnionSchema)
	pu, ok2 := old.(*avro.UnionSchema)
	if !ok1 || !ok2 || len(pu.Types()) > len(cu.Types()) {
		return false
	}
	for i, pt := range pu.Types() {
		ct := cu.Types()[i]
		pn, ok1 := deref(pt).(avro.NamedSchema)
		cn, ok2 := deref(ct).(avro.NamedSchema)
		if !ok1 || !ok2 || pn.FullName() != cn.FullName() {
			return false
		}
		if standaloneCanonicalForm(pt) == standaloneCanonicalForm(ct) {
			members[cn.FullName()] = true
		}
	}
	return true
}

// carriesSymbols adds old's symbols to symbols, and reports whether they are
// the first of current's, in order.
func carriesSymbols(symbols map[string]bool, current, old avro.Schema) bool {
	ce, ok1 := current.(*avro.EnumSchema)
	pe, ok2 := old.(*avro.EnumSchema)
	if !ok1 || !ok2 || ce.FullName() != pe.FullName() || len(pe.Symbols()) > len(ce.Symbols()) ||
		!slices.Equal(pe.Symbols(), ce.Symbols()[:len(pe.Symbols())]) {
		return false
	}
	for _, s := range pe.Symbols() {
		symbols[s] = true
	}
	return true
}

// deref returns the named schema a reference stands for, or s itself.
func deref(s avro.Schema) avro.Schema {
	if r, ok := s.(*avro.RefSchema); ok {
		return r.Schema()
	}
	return s
}

// chooseWriters maps every record and symbol of the current schema of env
// to the oldest of versions (oldest first) that carries them, or to current
// when none does (only if the newest version is not the current schema). A
// version that cannot be used at all is never chosen.
func chooseWriters(env Envelope, current *writer, versions []writer) (map[writerKey]*writer, error) {
	union, enum := env.variants()
	members, err := variantNames(current.schema, union)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", env, err)
	}
	symbols, err := variantSymbols(current.schema, enum)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", env, err)
	}
	type candidate struct {
		w *writer
		c carrier
	}
	var candidates []candidate
	for i := range versions {
		if c, ok := carries(current.schema, versions[i].schema, union, enum); ok {
			candidates = append(candidates, candidate{&versions[i], c})
		}
	}
	chosen := make(map[writerKey]*writer, len(members)*len(symbols))
	for _, m := range members {
		for _, s := range symbols {
			k := writerKey{member: m, symbol: s}
			chosen[k] = current
			for _, cand := range candidates {
				if cand.c.members[m] && cand.c.symbols[s] {
					chosen[k] = cand.w
					break
				}
			}
		}
	}
	return chosen, nil
}

// variantNames returns the full names of the records in field union of s,
// or [""] when union is "".
func variantNames(s avro.Schema, union string) ([]string, error) {
	if union == "" {
		return []string{""}, nil
	}
	u, ok := deref(fieldType(s, union)).(*avro.UnionSchema)
	if !ok {
		return nil, fmt.Errorf("field %s is not a union", union)
	}
	var names []string
	for _, t := range u.Types() {
		n, ok := deref(t).(avro.NamedSchema)
		if !ok {
			return nil, fmt.Errorf("union field %s has an unnamed member %s", union, t.Type())
		}
		names = append(names, n.FullName())
	}
	return names, nil
}

// variantSymbols returns the symbols of the enum field enum of s, or [""]
// when enum is "".
func variantSymbols(s avro.Schema, enum string) ([]string, error) {
	if enum == "" {
		return []string{""}, nil
	}
	e, ok := deref(fieldType(s, enum)).(*avro.EnumSchema)
	if !ok {
		return nil, fmt.Errorf("field %s is not an enum", enum)
	}
	return e.Symbols(), nil
}

// fieldType returns the type of record s's field name, or nil.
func fieldType(s avro.Schema, name string) avro.Schema {
	rec, ok := s.(*avro.RecordSchema)
	if !ok {
		return nil
	}
	for _, f := range rec.Fields() {
		if f.Name() == name {
			return f.Type()
		}
	}
	return nil
}

// memberName returns the Avro full name of union record v (a *Login, ...),
// or "" for anything else.
func (c *Codec) memberName(v any) string {
	return c.memberNames[reflect.TypeOf(v)]
}
