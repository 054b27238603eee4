"""An exception no handler expects (here: the engine's Redis gone) is answered with OpenAI's
500 body, code `internal_error`, and logged with its traceback, which never reaches the
client."""

from pathlib import Path

import httpx

from tools import stack


def test_the_engine_answers_500_when_its_redis_is_gone(workdir: Path, logs: Path) -> None:
    redis_port = stack.free_port()
    redis = stack.start_redis(redis_port, workdir / f"lost-redis-{redis_port}", logs)
    port = stack.free_port()
    settings = {
        "PRISM_ENGINE_LISTEN": f"127.0.0.1:{port}",
        "PRISM_ENGINE_API_KEY": "sk-engine-lost-redis",
        "PRISM_ENGINE_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "PRISM_ENGINE_DATA_DIR": str(workdir / f"lost-redis-engine-{port}"),
    }
    engine = stack.start_engine(settings, logs, name=f"engine-lost-redis-{port}")
    try:
        redis.stop()
        response = httpx.get(
            f"http://127.0.0.1:{port}/v1/assistants",
            headers={"Authorization": "Bearer sk-engine-lost-redis"},
        )
    finally:
        engine.stop()
        redis.stop()

    assert response.status_code == 500
    assert response.json() == {
        "error": {
            "message": "The engine failed to handle the request. Please retry; if it persists, "
            "see the engine's log.",
            "type": "server_error",
            "param": None,
            "code": "internal_error",
        }
    }
    assert "Traceback" not in response.text
    log = engine.log()
    assert "unhandled error in GET /v1/assistants" in log and "Traceback" in log
