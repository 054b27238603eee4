"""Neither a client's Prism key nor the upstream's key appears in anything the gateway
writes or sends back, on success or failure."""

import openai
import pytest

from tests.conftest import ControlPlane, DataPlane, FakeUpstream, IssueKey


def test_no_secret_in_responses_or_logs(
    dataplane: DataPlane,
    controlplane: ControlPlane,
    fake_upstream: FakeUpstream,
    issue_key: IssueKey,
) -> None:
    _, issued = issue_key(allowed_models=["gpt-4o"])
    client = openai.OpenAI(base_url=dataplane.url, api_key=issued.secret, max_retries=0)
    seen: list[str] = []

    raw = client.beta.assistants.with_raw_response.create(model="gpt-4o")
    seen += [str(raw.headers), raw.text]
    with pytest.raises(openai.PermissionDeniedError) as denied:
        client.beta.assistants.create(model="gpt-4")
    seen += [str(denied.value.response.headers), denied.value.response.text]
    fake_upstream.add_fault(method="GET", path="/v1/assistants", status=500)
    with pytest.raises(openai.InternalServerError) as failed:
        client.beta.assistants.list()
    seen += [str(failed.value.response.headers), failed.value.response.text]
    impostor = issued.secret[:-4] + "AAAA"
    with pytest.raises(openai.AuthenticationError) as refused:
        openai.OpenAI(base_url=dataplane.url, api_key=impostor, max_retries=0).files.list()
    seen += [str(refused.value.response.headers), refused.value.response.text]

    written = "\n".join([*seen, dataplane.process.log(), controlplane.process.log()])
    for secret in (issued.secret, impostor, fake_upstream.api_key):
        assert secret not in written
