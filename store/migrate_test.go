package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// openRaw opens a bbolt file without migrating it, checked at cleanup.
func openRaw(t *testing.T, path string) *bolt.DB {
	t.Helper()
	b, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatalf("bolt.Open(%q) = %v", path, err)
	}
	t.Cleanup(func() {
		if err := b.View(checkTx); err != nil {
			t.Errorf("tx.Check(%q) = %v", path, err)
		}
		b.Close()
	})
	return b
}

// checkTx runs bbolt's consistency check.
func checkTx(tx *bolt.Tx) error {
	var errs []error
	for err := range tx.Check() {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// rawVersion reads the stamped schema version of b.
func rawVersion(t *testing.T, b *bolt.DB) uint64 {
	t.Helper()
	var v uint64
	if err := b.View(func(tx *bolt.Tx) error {
		var err error
		v, err = schemaVersion(tx)
		return err
	}); err != nil {
		t.Fatalf("schemaVersion() = %v", err)
	}
	return v
}

func TestMigrationsList(t *testing.T) {
	if len(migrations) != SchemaVersion {
		t.Errorf("len(migrations) = %d, want SchemaVersion %d", len(migrations), SchemaVersion)
	}
	for i, m := range migrations {
		if m.version != uint64(i+1) || m.name == "" || m.apply == nil {
			t.Errorf("migrations[%d] = {version %d, name %q}, want version %d with a name and a func", i, m.version, m.name, i+1)
		}
	}
}

// Migration 1 creates every v1 bucket, from an empty file and from a file
// where an earlier attempt left part of the tree without a version.
func TestMigration1(t *testing.T) {
	wantBuckets := []string{"by_finish", "by_state", "idempotency", "meta", "outputs", "tasks"}
	tests := []struct {
		name  string
		setup func(tx *bolt.Tx) error
	}{
		{"empty file", func(*bolt.Tx) error { return nil }},
		{"root without meta", func(tx *bolt.Tx) error {
			root, err := tx.CreateBucket(bucketRoot)
			if err != nil {
				return err
			}
			tasks, err := root.CreateBucket(bucketTasks)
			if err != nil {
				return err
			}
			return tasks.Put([]byte("kept"), []byte("value"))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := openRaw(t, filepath.Join(t.TempDir(), "db"))
			if err := b.Update(tt.setup); err != nil {
				t.Fatal(err)
			}
			var from, to uint64
			err := b.Update(func(tx *bolt.Tx) error {
				var err error
				from, to, err = migrate(tx, migrations[:1], discard())
				return err
			})
			if err != nil || from != 0 || to != 1 {
				t.Fatalf("migrate(migration 1) = %d, %d, %v, want 0, 1, nil", from, to, err)
			}
			if v := rawVersion(t, b); v != 1 {
				t.Errorf("schema version after migration 1 = %d, want 1", v)
			}
			var got []string
			_ = b.View(func(tx *bolt.Tx) error {
				return tx.Bucket(bucketRoot).ForEachBucket(func(k []byte) error {
					got = append(got, string(k))
					return nil
				})
			})
			if fmt.Sprint(got) != fmt.Sprint(wantBuckets) {
				t.Errorf("buckets under v1 after migration 1 = %v, want %v", got, wantBuckets)
			}
			if tt.name == "root without meta" {
				_ = b.View(func(tx *bolt.Tx) error {
					if v := tx.Bucket(bucketRoot).Bucket(bucketTasks).Get([]byte("kept")); string(v) != "value" {
						t.Errorf("existing record after migration 1 = %q, want kept", v)
					}
					return nil
				})
			}
		})
	}
}

// Open migrates a zero-length file, as an operator's `touch` leaves it.
func TestOpenEmptyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pcnode.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open(empty file) = %v", err)
	}
	if err := db.Check(context.Background()); err != nil {
		t.Errorf("Check() after migrating an empty file = %v", err)
	}
	db.Close()
	if v := rawVersion(t, openRaw(t, path)); v != SchemaVersion {
		t.Errorf("schema version after Open = %d, want %d", v, SchemaVersion)
	}
}

func TestOpenSchemaTooNew(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pcnode.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	b, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Update(func(tx *bolt.Tx) error { return setSchemaVersion(tx, SchemaVersion+1) }); err != nil {
		t.Fatal(err)
	}
	b.Close()

	db, err = Open(path, Options{})
	if !errors.Is(err, ErrSchemaTooNew) {
		if db != nil {
			db.Close()
		}
		t.Fatalf("Open(file of schema %d) = %v, want %v", SchemaVersion+1, err, ErrSchemaTooNew)
	}
	if v := rawVersion(t, openRaw(t, path)); v != SchemaVersion+1 {
		t.Errorf("schema version after refused Open = %d, want it untouched at %d", v, SchemaVersion+1)
	}
}

// migrate applies only the missing migrations, in order, and a failing one
// leaves nothing of the run behind.
func TestMigrate(t *testing.T) {
	errBoom := errors.New("boom")
	var ran []uint64
	step := func(v uint64, fail bool) migration {
		return migration{version: v, name: fmt.Sprint("step ", v), apply: func(tx *bolt.Tx) error {
			ran = append(ran, v)
			if _, err := tx.CreateBucketIfNotExists(fmt.Appendf(nil, "made-by-%d", v)); err != nil {
				return err
			}
			if fail {
				return errBoom
			}
			return nil
		}}
	}
	tests := []struct {
		name        string
		start       uint64 // stamped before; 0: fresh file
		list        []migration
		wantErr     error
		wantRan     []uint64
		wantVersion uint64
	}{
		{"all from fresh", 0, []migration{step(1, false), step(2, false), step(3, false)}, nil, []uint64{1, 2, 3}, 3},
		{"only missing", 2, []migration{step(1, false), step(2, false), step(3, false)}, nil, []uint64{3}, 3},
		{"up to date", 3, []migration{step(1, false), step(2, false), step(3, false)}, nil, nil, 3},
		{"failure rolls back", 1, []migration{step(1, false), step(2, false), step(3, true)}, errBoom, []uint64{2, 3}, 1},
		{"too new", 4, []migration{step(1, false), step(2, false), step(3, false)}, ErrSchemaTooNew, nil, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := openRaw(t, filepath.Join(t.TempDir(), "db"))
			if tt.start > 0 {
				if err := b.Update(func(tx *bolt.Tx) error { return setSchemaVersion(tx, tt.start) }); err != nil {
					t.Fatal(err)
				}
			}
			ran = nil
			err := b.Update(func(tx *bolt.Tx) error {
				_, _, err := migrate(tx, tt.list, discard())
				return err
			})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("migrate() = %v, want %v", err, tt.wantErr)
			}
			if fmt.Sprint(ran) != fmt.Sprint(tt.wantRan) {
				t.Errorf("migrate() ran %v, want %v", ran, tt.wantRan)
			}
			if v := rawVersion(t, b); v != tt.wantVersion {
				t.Errorf("schema version after migrate() = %d, want %d", v, tt.wantVersion)
			}
			_ = b.View(func(tx *bolt.Tx) error {
				for v := uint64(1); v <= 3; v++ {
					made := tx.Bucket(fmt.Appendf(nil, "made-by-%d", v)) != nil
					want := tt.wantErr == nil && slices.Contains(tt.wantRan, v)
					if made != want {
						t.Errorf("bucket of step %d exists = %v, want %v", v, made, want)
					}
				}
				return nil
			})
		})
	}
}

func TestSchemaVersionCorrupt(t *testing.T) {
	b := openRaw(t, filepath.Join(t.TempDir(), "db"))
	err := b.Update(func(tx *bolt.Tx) error {
		if err := createV1Buckets(tx); err != nil {
			return err
		}
		if err := tx.Bucket(bucketRoot).Bucket(bucketMeta).Put(keySchemaVersion, []byte{1}); err != nil {
			return err
		}
		_, _, err := migrate(tx, migrations, discard())
		return err
	})
	if !errors.Is(err, ErrCorrupt) {
		t.Errorf("migrate(1-byte schema version) = %v, want %v", err, ErrCorrupt)
	}
}
