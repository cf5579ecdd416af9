package wal

import (
	"encoding/binary"
	"fmt"

	"go.etcd.io/raft/v3/raftpb"
)

// Payload layouts (all integers little endian):
//
//	entry:     term u64 | index u64 | entry type u8 | data ...
//	hardstate: term u64 | vote u64 | commit u64
//	snapshot:  index u64 | term u64

const (
	entryHeaderBytes = 17
	hardStateBytes   = 24
	snapMarkerBytes  = 16
)

// EntryRecord frames a raft entry as a TypeEntry record payload appended to dst.
func EntryRecord(dst []byte, e *raftpb.Entry) []byte {
	var h [entryHeaderBytes]byte
	binary.LittleEndian.PutUint64(h[0:8], e.GetTerm())
	binary.LittleEndian.PutUint64(h[8:16], e.GetIndex())
	h[16] = byte(e.GetType())
	dst = append(dst, h[:]...)
	return append(dst, e.GetData()...)
}

// DecodeEntry decodes a TypeEntry payload. The entry's Data is a copy.
func DecodeEntry(p []byte) (*raftpb.Entry, error) {
	if len(p) < entryHeaderBytes {
		return nil, fmt.Errorf("%w: entry payload of %d bytes", ErrCorrupt, len(p))
	}
	typ := raftpb.EntryType(p[16])
	switch typ {
	case raftpb.EntryType_EntryNormal, raftpb.EntryType_EntryConfChange, raftpb.EntryType_EntryConfChangeV2:
	default:
		return nil, fmt.Errorf("%w: entry type %d", ErrCorrupt, p[16])
	}
	e := &raftpb.Entry{
		Term:  new(binary.LittleEndian.Uint64(p[0:8])),
		Index: new(binary.LittleEndian.Uint64(p[8:16])),
		Type:  typ.Enum(),
	}
	if len(p) > entryHeaderBytes {
		e.Data = append([]byte(nil), p[entryHeaderBytes:]...)
	}
	return e, nil
}

// HardStateRecord appends a TypeHardState payload for hs to dst.
func HardStateRecord(dst []byte, hs *raftpb.HardState) []byte {
	var b [hardStateBytes]byte
	binary.LittleEndian.PutUint64(b[0:8], hs.GetTerm())
	binary.LittleEndian.PutUint64(b[8:16], hs.GetVote())
	binary.LittleEndian.PutUint64(b[16:24], hs.GetCommit())
	return append(dst, b[:]...)
}

// DecodeHardState decodes a TypeHardState payload.
func DecodeHardState(p []byte) (*raftpb.HardState, error) {
	if len(p) != hardStateBytes {
		return nil, fmt.Errorf("%w: hardstate payload of %d bytes", ErrCorrupt, len(p))
	}
	return &raftpb.HardState{
		Term:   new(binary.LittleEndian.Uint64(p[0:8])),
		Vote:   new(binary.LittleEndian.Uint64(p[8:16])),
		Commit: new(binary.LittleEndian.Uint64(p[16:24])),
	}, nil
}

// SnapshotMarker names a durable snapshot file by its raft index and term.
type SnapshotMarker struct {
	Index, Term uint64
}

// SnapshotRecord appends a TypeSnapshot payload for m to dst.
func SnapshotRecord(dst []byte, m SnapshotMarker) []byte {
	var b [snapMarkerBytes]byte
	binary.LittleEndian.PutUint64(b[0:8], m.Index)
	binary.LittleEndian.PutUint64(b[8:16], m.Term)
	return append(dst, b[:]...)
}

// DecodeSnapshotMarker decodes a TypeSnapshot payload.
func DecodeSnapshotMarker(p []byte) (SnapshotMarker, error) {
	if len(p) != snapMarkerBytes {
		return SnapshotMarker{}, fmt.Errorf("%w: snapshot marker payload of %d bytes", ErrCorrupt, len(p))
	}
	return SnapshotMarker{Index: binary.LittleEndian.Uint64(p[0:8]), Term: binary.LittleEndian.Uint64(p[8:16])}, nil
}
