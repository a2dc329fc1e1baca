package server

import (
	"reflect"
	"testing"

	"google.golang.org/grpc"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
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

// Register serves the API's three services, every method of each.
func TestRegister(t *testing.T) {
	srv := grpc.NewServer()
	Register(srv, &fakeNode{})
	info := srv.GetServiceInfo()
	for _, sd := range []grpc.ServiceDesc{pcnodev1.TaskService_ServiceDesc, pcnodev1.NodeService_ServiceDesc, pcnodev1.ImageService_ServiceDesc} {
		got, want := len(info[sd.ServiceName].Methods), len(sd.Methods)+len(sd.Streams)
		if got == 0 || got != want {
			t.Errorf("Register served %d methods of %s, want %d", got, sd.ServiceName, want)
		}
	}
}
