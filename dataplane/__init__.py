"""Prism's data plane: the HTTP gateway apps talk to instead of the OpenAI API."""
