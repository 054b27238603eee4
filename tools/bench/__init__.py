"""`make bench`: what the gateway costs, measured on this machine.

Three parts, each on a private stack of its own, in one run: latency.py, what the gateway
adds to each request's latency in front of the engine; overhead.py, the CPU each process
spends per proxied request next to the framework's floor, and the peak throughput of
1 and 2 data-plane workers and control planes (and, with `--peers litellm`, LiteLLM's
proxy on the same upstream); checks.py, the control plane's CPU per Check under a load of
Checks alone, next to a bare grpc.aio servicer's.
"""
