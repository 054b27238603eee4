"""The outbox, tried as an operator restarting processes would: what a response showed
reaches the control plane however long it is down and whether or not the data plane
survives meanwhile. Runs that end while the control plane is away are charged once it is
back, exactly once; a data plane killed with Records it could not deliver delivers them
after its restart; a Record sent again is applied once, so it never brings back an object
deleted since."""

import asyncio
import signal
import subprocess
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import openai
import pytest

from dataplane.authorizer import Authorizer
from dataplane.config import Settings, load_settings
from dataplane.outbox import Outbox
from dataplane.spool import Entry, Spool
from prism.v1 import authorizer_pb2
from tests.conftest import (
    DATAPLANE_TOKEN,
    AdminClient,
    AuthorizerClient,
    ControlPlane,
    DataPlane,
    IssueKey,
    Sdk,
    Upstream,
    wait_for,
)
from tests.test_costs import GPT_4O, run_micros, usage_of

RUNS_PATH = "/v1/threads/{thread_id}/runs"
# Each event of a run's stream is held this long on its way from the upstream: a run's
# stream lasts a few seconds, long enough to kill the control plane in its middle.
EVENT_DELAY_MS = 300
ASSISTANT = authorizer_pb2.OBJECT_KIND_ASSISTANT


def _kill(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait()


def _stream_run(client: openai.OpenAI, assistant_id: str, started: threading.Barrier) -> str:
    """Streams a run to its end; `started` is passed once the client has seen the run's
    `thread.run.created`, so the gateway has recorded the run. Answers `thread_id/run_id`."""
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Tell me more"}])
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant_id) as events:
        for event in events:
            if event.event == "thread.run.created":
                started.wait()
        run = events.get_final_run()
    assert run.status == "completed"
    return f"{thread.id}/{run.id}"


def test_runs_that_end_while_the_control_plane_is_down_are_charged_once_it_is_back(
    issue_key: IssueKey,
    sdk: Sdk,
    admin: AdminClient,
    start_controlplane: Callable[..., ControlPlane],
    start_dataplane: Callable[..., DataPlane],
    upstream: Upstream,
) -> None:
    """Two streamed runs; the control plane is SIGKILLed early in them and comes back only
    after both streams ended, long after a response waits for its Record."""
    controlplane = start_controlplane()
    dataplane = start_dataplane(controlplane.addr)
    org, issued = issue_key()
    client = sdk(issued.secret, dataplane.url)
    assistant = client.beta.assistants.create(model="gpt-4o")
    upstream.add_fault(method="POST", path=RUNS_PATH, event_delay_ms=EVENT_DELAY_MS, times=2)

    started = threading.Barrier(3, timeout=30)
    with ThreadPoolExecutor(2) as pool:
        streams = [pool.submit(_stream_run, client, assistant.id, started) for _ in range(2)]
        started.wait()
        _kill(controlplane.process.popen)
        ended = [stream.result(timeout=60) for stream in streams]
    assert usage_of(admin, org_id=org.id).total.runs == 0

    start_controlplane(PRISM_GRPC_LISTEN=controlplane.addr)

    wait_for(lambda: usage_of(admin, org_id=org.id).total.runs == 2, "both runs charged")
    runs = [
        client.beta.threads.runs.retrieve(run_id, thread_id=thread_id)
        for thread_id, run_id in (pair.split("/") for pair in ended)
    ]
    total = usage_of(admin, org_id=org.id).total
    # Seen again, charged no more.
    assert total.runs == 2
    assert round(total.cost_usd * 1_000_000) == sum(run_micros(run, GPT_4O) for run in runs)


def test_a_data_plane_killed_with_undelivered_records_delivers_them_after_its_restart(
    issue_key: IssueKey,
    sdk: Sdk,
    admin: AdminClient,
    start_controlplane: Callable[..., ControlPlane],
    start_dataplane: Callable[..., DataPlane],
    upstream: Upstream,
    tmp_path: Path,
) -> None:
    """The control plane dies mid-stream; the data plane, holding the stream's last Record
    (the run ended, with its usage), is SIGKILLed too. Both restart, the control plane with
    no sweeper to charge the run: the restarted data plane delivers the Record it found in
    its outbox, and the run is charged once."""
    controlplane = start_controlplane()
    outbox = str(tmp_path / "outbox")
    dataplane = start_dataplane(controlplane.addr, PRISM_OUTBOX_DIR=outbox)
    org, issued = issue_key()
    client = sdk(issued.secret, dataplane.url)
    assistant = client.beta.assistants.create(model="gpt-4o")
    upstream.add_fault(method="POST", path=RUNS_PATH, event_delay_ms=EVENT_DELAY_MS)

    started = threading.Barrier(2, timeout=30)
    with ThreadPoolExecutor(1) as pool:
        stream = pool.submit(_stream_run, client, assistant.id, started)
        started.wait()
        _kill(controlplane.process.popen)
        thread_id, run_id = stream.result(timeout=60).split("/")
    _kill(dataplane.process.popen)

    start_controlplane(PRISM_GRPC_LISTEN=controlplane.addr)
    assert usage_of(admin, org_id=org.id).total.runs == 0
    restarted = start_dataplane(controlplane.addr, PRISM_OUTBOX_DIR=outbox)

    wait_for(lambda: usage_of(admin, org_id=org.id).total.runs == 1, "the run charged")
    run = sdk(issued.secret, restarted.url).beta.threads.runs.retrieve(run_id, thread_id=thread_id)
    assert round(usage_of(admin, org_id=org.id).total.cost_usd * 1_000_000) == run_micros(
        run, GPT_4O
    )


def test_a_record_sent_again_is_applied_once(
    issue_key: IssueKey, client: openai.OpenAI, controlplane: ControlPlane
) -> None:
    """A Record whose answer was lost is sent again, perhaps after a later Record of its
    key deleted what it created: the object stays deleted."""
    _, issued = issue_key()
    with grpc.insecure_channel(controlplane.addr) as channel:
        authorizer = AuthorizerClient(channel)
        grant = authorizer.grant(issued.secret)
        created = authorizer_pb2.RecordRequest(
            grant=grant,
            objects=[
                authorizer_pb2.OwnedObject(
                    id="asst_sent_twice", kind=authorizer_pb2.OBJECT_KIND_ASSISTANT
                )
            ],
            sequence=0,
        )
        deleted = authorizer_pb2.RecordRequest(
            grant=grant, deleted_ids=["asst_sent_twice"], sequence=1
        )
        authorizer.Record(created)
        assert authorizer.FilterOwned(
            authorizer_pb2.FilterOwnedRequest(grant=grant, ids=["asst_sent_twice"])
        ).ids == ["asst_sent_twice"]
        authorizer.Record(deleted)
        authorizer.Record(created)
        owned = authorizer.FilterOwned(
            authorizer_pb2.FilterOwnedRequest(grant=grant, ids=["asst_sent_twice"])
        )
    assert list(owned.ids) == []


@pytest.mark.parametrize("sequence", [0, 1])
def test_another_request_of_the_key_is_not_taken_for_a_record_sent_again(
    sequence: int, issue_key: IssueKey, controlplane: ControlPlane
) -> None:
    """The once marker belongs to one request's Record: another request's Record of the
    same sequence applies."""
    _, issued = issue_key()
    with grpc.insecure_channel(controlplane.addr) as channel:
        authorizer = AuthorizerClient(channel)
        for number in range(2):
            grant = authorizer.grant(issued.secret)
            authorizer.Record(
                authorizer_pb2.RecordRequest(
                    grant=grant,
                    objects=[
                        authorizer_pb2.OwnedObject(
                            id=f"asst_{sequence}_{number}",
                            kind=authorizer_pb2.OBJECT_KIND_ASSISTANT,
                        )
                    ],
                    sequence=sequence,
                )
            )
        owned = authorizer.FilterOwned(
            authorizer_pb2.FilterOwnedRequest(
                grant=grant, ids=[f"asst_{sequence}_0", f"asst_{sequence}_1"]
            )
        )
    assert list(owned.ids) == [f"asst_{sequence}_0", f"asst_{sequence}_1"]


# The spool and the outbox in this process, against the real control plane


def _dataplane_settings(controlplane_addr: str, outbox_dir: Path) -> Settings:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PRISM_CONTROLPLANE_ADDR", controlplane_addr)
        env.setenv("PRISM_DATAPLANE_TOKEN", DATAPLANE_TOKEN)
        env.setenv("PRISM_OUTBOX_DIR", str(outbox_dir))
        return load_settings()


def _entry(grant: str, number: int, **record: object) -> Entry:
    request = authorizer_pb2.RecordRequest(grant=grant, sequence=number, **record)
    return Entry(f"req_test.{number}", "key_test", request)


def test_a_spool_no_process_holds_is_delivered_by_the_next_to_start(tmp_path: Path) -> None:
    """Records a process appended and never saw delivered (it was killed) are the next
    claimant's, oldest first, with a torn last line skipped; a spool whose Records are all
    delivered is empty."""
    first = Spool(tmp_path)
    assert first.open() == []
    entries = [_entry("grant", number, finished=True) for number in range(3)]
    for entry in entries:
        first.append(entry)
    first.delivered(entries[1].record_id)
    first.close()
    with (tmp_path / "0.spool").open("ab") as spool:
        spool.write(b'{"id":"req_torn.0","key":"k","rec')

    second = Spool(tmp_path)
    assert second.open() == [entries[0], entries[2]]
    second.delivered(entries[0].record_id)
    second.delivered(entries[2].record_id)
    assert (tmp_path / "0.spool").stat().st_size == 0
    second.close()


def test_spools_of_more_processes_than_now_run_are_adopted(tmp_path: Path) -> None:
    """Two processes ran; one starts again: it claims a spool and adopts the other's, and
    no Record is lost or doubled."""
    held = [Spool(tmp_path), Spool(tmp_path)]
    for number, spool in enumerate(held):
        spool.open()
        spool.append(_entry("grant", number))
    while_held = Spool(tmp_path)
    assert while_held.open() == []  # a third spool: the other two are their processes'
    while_held.close()
    for spool in held:
        spool.close()

    restarted = Spool(tmp_path)
    assert sorted(entry.record_id for entry in restarted.open()) == ["req_test.0", "req_test.1"]
    assert sorted(path.name for path in tmp_path.glob("*.spool")) == ["0.spool"]
    restarted.close()


def test_records_wait_in_order_for_a_control_plane_that_is_down(
    issue_key: IssueKey,
    start_controlplane: Callable[..., ControlPlane],
    tmp_path: Path,
) -> None:
    """While the control plane is down, a key's Records queue in the outbox in the order
    they were made; once it is back they are applied in that order: the object created,
    then deleted, stays deleted. A Record the control plane refuses for good (a forged
    grant) is dropped, not sent forever."""
    controlplane = start_controlplane()
    _, issued = issue_key()
    with grpc.insecure_channel(controlplane.addr) as channel:
        grant = AuthorizerClient(channel).grant(issued.secret)
    _kill(controlplane.process.popen)

    async def deliver_while_down() -> tuple[list[object], int]:
        authorizer = Authorizer(_dataplane_settings(controlplane.addr, tmp_path))
        await authorizer.open()
        outbox = Outbox(Spool(tmp_path), authorizer)
        outbox.open()
        created = _entry(
            grant, 0, objects=[authorizer_pb2.OwnedObject(id="asst_in_order", kind=ASSISTANT)]
        )
        deleted = _entry(grant, 1, deleted_ids=["asst_in_order"])
        forged = _entry(grant[:-4] + "AAAA", 2, finished=True)
        answers = [await outbox.deliver(entry, wait=0.2) for entry in (created, deleted, forged)]
        assert outbox.waiting == 3
        start_controlplane(PRISM_GRPC_LISTEN=controlplane.addr)
        while outbox.waiting:
            await asyncio.sleep(0.05)
        await outbox.close()
        await authorizer.close()
        return answers, (tmp_path / "0.spool").stat().st_size

    answers, spool_size = asyncio.run(deliver_while_down())
    assert answers == [None, None, None]
    assert spool_size == 0
    with grpc.insecure_channel(controlplane.addr) as channel:
        owned = AuthorizerClient(channel).FilterOwned(
            authorizer_pb2.FilterOwnedRequest(grant=grant, ids=["asst_in_order"])
        )
    assert list(owned.ids) == []
