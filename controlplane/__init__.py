"""Prism's control plane: orgs and keys (prism.v1.Admin) and the per-request decision
(prism.v1.Authorizer), over gRPC, with all state in Redis.

Domain (no grpc, no protobuf):
    keys        secrets, their SHA-256, display prefixes, key and org ids, masking
    records     OrgRecord, KeyRecord, Policy and their JSON form in Redis
    policy      the decision for one request (Denial), and policy validation
    errors      domain errors with messages a person can act on
    store       Redis storage: atomic writes, paging, the one-round-trip key lookup
    registry    the admin operations: validation, update masks, page tokens
    authorizer  Check: key lookup, then policy, then the upstream to use
Wire:
    wire                conversions between prism.v1 messages and records
    statuses            domain errors as gRPC status codes
    admin_service       prism.v1.Admin servicer
    authorizer_service  prism.v1.Authorizer servicer
    auth                the admin-token interceptor
Process:
    config      Settings from the environment
    server      the grpc.aio server: services, health, reflection
    __main__    `python -m controlplane`: start, serve, drain on SIGINT/SIGTERM
"""
