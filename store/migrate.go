package store

import (
	"encoding/binary"
	"fmt"
	"log/slog"

	bolt "go.etcd.io/bbolt"
)

// SchemaVersion is the version of the bucket layout this code writes: the
// number of migrations it knows.
const SchemaVersion = 4

// Bucket and key names; the package doc draws the tree.
var (
	bucketRoot        = []byte("v1")
	bucketMeta        = []byte("meta")
	bucketTasks       = []byte("tasks")
	bucketIdempotency = []byte("idempotency")
	bucketOutputs     = []byte("outputs")
	bucketByState     = []byte("by_state")
	bucketByFinish    = []byte("by_finish")
	bucketByLabel     = []byte("by_label")
	bucketRevisions   = []byte("revisions")
	bucketHistory     = []byte("history")
	bucketNode        = []byte("node")
	bucketGPUMarks    = []byte("gpu_marks")

	keySchemaVersion = []byte("schema_version")
	keyRevision      = []byte("revision")
	keyDraining      = []byte("draining")
)

// A migration moves the file from version-1 to version. It runs inside the
// transaction that stamps version, so it either fully happens or not at all.
type migration struct {
	version uint64
	name    string
	apply   func(tx *bolt.Tx) error
}

// migrations is every migration, in order; migrations[i].version == i+1.
// Append only: a released migration never changes.
var migrations = []migration{
	{version: 1, name: "create the v1 buckets", apply: createV1Buckets},
	{version: 2, name: "add revisions and the history of state changes", apply: addRevisions},
	{version: 3, name: "add the node state: drain and GPU health marks", apply: addNodeState},
	{version: 4, name: "add the label index", apply: addLabelIndex},
}

// createV1Buckets creates the tree of schema version 1. Buckets that exist
// are kept, so it also completes a file whose version was never stamped.
func createV1Buckets(tx *bolt.Tx) error {
	root, err := tx.CreateBucketIfNotExists(bucketRoot)
	if err != nil {
		return err
	}
	for _, name := range [][]byte{bucketMeta, bucketTasks, bucketIdempotency, bucketOutputs, bucketByState, bucketByFinish} {
		if _, err := root.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("bucket %s: %w", name, err)
		}
	}
	return nil
}

// schemaVersion reads the stamped version; 0 for a file that has none.
func schemaVersion(tx *bolt.Tx) (uint64, error) {
	root := tx.Bucket(bucketRoot)
	if root == nil {
		return 0, nil
	}
	meta := root.Bucket(bucketMeta)
	if meta == nil {
		return 0, nil
	}
	v := meta.Get(keySchemaVersion)
	switch len(v) {
	case 0:
		return 0, nil
	case 8:
		return binary.BigEndian.Uint64(v), nil
	default:
		return 0, fmt.Errorf("schema version of %d bytes: %w", len(v), ErrCorrupt)
	}
}

// setSchemaVersion stamps v.
func setSchemaVersion(tx *bolt.Tx, v uint64) error {
	root, err := tx.CreateBucketIfNotExists(bucketRoot)
	if err != nil {
		return err
	}
	meta, err := root.CreateBucketIfNotExists(bucketMeta)
	if err != nil {
		return err
	}
	return meta.Put(keySchemaVersion, binary.BigEndian.AppendUint64(nil, v))
}

// migrate applies the migrations of list that tx's file lacks, stamping the
// version after each, and returns the versions before and after. A file newer
// than list gives ErrSchemaTooNew.
func migrate(tx *bolt.Tx, list []migration, log *slog.Logger) (from, to uint64, err error) {
	from, err = schemaVersion(tx)
	if err != nil {
		return 0, 0, err
	}
	known := uint64(len(list))
	if from > known {
		return from, from, fmt.Errorf("file has schema version %d, this program knows up to %d: %w", from, known, ErrSchemaTooNew)
	}
	for _, m := range list[from:] {
		if err := m.apply(tx); err != nil {
			return from, m.version - 1, fmt.Errorf("migration %d (%s): %w", m.version, m.name, err)
		}
		if err := setSchemaVersion(tx, m.version); err != nil {
			return from, m.version - 1, fmt.Errorf("stamping schema version %d: %w", m.version, err)
		}
		log.Info("applied store migration", "version", m.version, "migration", m.name)
	}
	return from, known, nil
}
