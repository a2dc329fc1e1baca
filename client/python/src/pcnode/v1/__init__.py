"""Generated gRPC stubs of pcnode.v1 (make generate; do not edit)."""
