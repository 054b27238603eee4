"""The units the gateway reports rate limits in, shared by both planes: each is the field of
prism.v1.CheckResponse that carries the tightest limit's status and the suffix of the
`x-ratelimit-{limit,remaining,reset}-<unit>` headers the data plane sends, as OpenAI names
its own."""

REQUESTS = "requests"
TOKENS = "tokens"
REPORTED_UNITS = (REQUESTS, TOKENS)
