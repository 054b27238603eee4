"""Prism's control plane: orgs and keys (prism.v1.Admin) and the per-request decision
(prism.v1.Authorizer), over gRPC, with all state in Redis.

Domain (no grpc, no protobuf):
    keys, records       secrets and ids; OrgRecord, KeyRecord, Policy and their stored JSON
    policy              the decision for one request (Denial); policy_validation: its checks
    limit_kinds         LIMIT_KINDS, one entry per rate-limit kind
    limiter             which counters and budgets a request meets, what their answers mean
    pricing, costs      prices and charges; usage: usage fields, rows and queries
    registry            the admin operations: validation, update masks, page tokens
    errors, paging      domain errors; page sizes and tokens
Requests:
    authorizer          Check, Record and Renew: key lookup, policy, Redis, the upstream to use
    check_request, record_request, key_validation, known_keys   their inputs and parts
    check_script        verify.lua's and check.lua's arguments and answers, typed
    grants, credentials, service_tokens   Check's grants, sealed upstream keys, callers' tokens
    sweeper             charges runs that ended unseen, and the daily storage fees
Redis (one part per concern, each with its script beside it; callers hold the parts they use):
    redis_access        Unavailable for a silent Redis, paging id indexes, the parts' base
    accounts            org and key records, their indexes, key lookup, the grant key
    decisions           lua/verify.lua, lua/check.lua (+ limit_algorithms/), ownership
    charges             charge facts, lua/record.lua (objects, runs, steps, slots), spend
    slot_leases         renewing concurrency slots' leases (lua/renew.lua)
    reservations        budget reservations: expected costs, held until runs are charged
    prices, usage_reads stored prices and tool fees; the usage hashes GetUsage reads
    run_queue           the sweeper's pending runs, its claims, a run's creator
    storage_fees        a day's storage-fee claim and charge (lua/storage_fees.lua)
    request_logs        the request log the data plane writes, read for Admin
Wire:
    wire, wire_reports  conversions between prism.v1 messages and domain values
    statuses            domain errors as gRPC status codes
    admin_service, authorizer_service, keys_service   the servicers
    callers             who may call what (the interceptor)
Process:
    config, server, __main__   settings, the grpc.aio server, start and drain
    metrics, metrics_server    Prometheus metrics and /metrics
"""
