package server

import (
	"reflect"
	"testing"
)

// TestServicesSeeOnlyTheLocalNode holds the services to the layout of
// doc.go: each holds the node only as the interface it declares, so that
// no service file can reach the store, the runtime or the scheduler.
func TestServicesSeeOnlyTheLocalNode(t *testing.T) {
	for _, s := range []any{taskService{}, nodeService{}, imageService{}} {
		typ := reflect.TypeOf(s)
		for i := range typ.NumField() {
			f := typ.Field(i)
			if f.Anonymous { // the generated Unimplemented…Server
				continue
			}
			if f.Type.Kind() != reflect.Interface {
				t.Errorf("%s.%s is %s, want only an interface of the local node", typ.Name(), f.Name, f.Type)
			}
		}
	}
}
