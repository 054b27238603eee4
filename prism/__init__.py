"""Code shared by Prism's components: the generated API stubs and the Redis schema."""
