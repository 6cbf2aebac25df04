package storage

import (
	"time"

	"github.com/flowd/flowd/engine"
)

// The encodings of stored values, exported for the other backends (storage/postgres), so that
// every backend stores run records and static values in one form, payload caps included.

// EncodeRunNodes renders r's node executions as the document run_nodes.go describes; nil
// when r has none. Payloads larger than MaxPayloadBytes keep their leading items.
func EncodeRunNodes(r *engine.Run) ([]byte, error) { return encodeNodes(r) }

// DecodeRunNodes reads a document EncodeRunNodes wrote for a run that started at start; a nil
// doc is no executions.
func DecodeRunNodes(doc []byte, start time.Time) ([]engine.NodeRun, error) {
	return decodeNodes(doc, start.UnixMicro())
}

// EncodeValue renders a static value as stored: compact JSON without HTML escaping.
func EncodeValue(v any) ([]byte, error) { return encodeJSON(v) }

// DecodeValue reads a stored static value as LoadStatic returns it: integral numbers as
// int64, others as float64.
func DecodeValue(data []byte) (any, error) {
	var v any
	err := decodeJSON(data, &v)
	return v, err
}

// CrashedRunError is the error of a run that MarkCrashed ended.
const CrashedRunError = crashedError
