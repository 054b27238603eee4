"""Prism's control plane: orgs and keys (prism.v1.Admin) and the per-request decision
(prism.v1.Authorizer), over gRPC, with all state in Redis."""
