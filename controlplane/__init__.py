"""Prism's control plane: orgs and keys (prism.v1.Admin) and the per-request decision
(prism.v1.Authorizer), over gRPC, with all state in Redis.

Domain (no grpc, no protobuf):
    keys        secrets, their SHA-256, display prefixes, key and org ids, masking
    records     OrgRecord, KeyRecord, Policy and their JSON form in Redis
    policy      the decision for one request (Denial), and policy validation
    errors      domain errors with messages a person can act on
    registry    the admin operations: validation, update masks, page tokens
    authorizer  Check: key lookup, then policy, then the upstream to use
Redis (one part per responsibility; each caller holds the parts it uses):
    redis_access        Unavailable for a silent Redis, paging id indexes, the parts' base
    accounts            org and key records, their indexes, key lookup, the grant key
    decisions           a request's verify.lua / check.lua call, object ownership
    charges             charge facts, record.lua (objects, runs, steps, slots), add_spend
    prices              stored model prices and tool fees
    usage_reads         the usage hashes GetUsage reads
    run_queue           the sweeper's pending runs, its claims, a run's creator
    storage_fees        a day's storage-fee claim and charge (storage_fees.lua)
    store               accounts + decisions + charges as the Authorizer's one object
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
