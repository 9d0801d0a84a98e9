"""Saves racing a finish: every acknowledged answer is scored, none lands after the finish."""

from __future__ import annotations

import threading
from collections import defaultdict

from .test_attempts import EXAM, items_of, keys_by_ref

WRITERS = 6
MAX_SAVES_PER_WRITER = 1000  # a writer stops at its first refusal


def test_saves_racing_finish_lose_nothing(app, client, make_candidate, auth_headers, seeded):
    """While writers save, the candidate finishes; stored answers equal the last accepted
    acks, later saves are refused with 409, and the score is that of the stored answers."""
    headers = auth_headers(make_candidate())
    state = client.post("/api/v1/attempts", json={"exam_code": EXAM}, headers=headers).json
    keys = keys_by_ref(app, state["id"])
    items = items_of(state)
    acks: dict[str, list[tuple[int, object]]] = defaultdict(list)
    statuses: list[int] = []
    enough_saved = threading.Event()
    lock = threading.Lock()

    def write(writer: int) -> None:
        writer_client = app.test_client()
        mine = items[writer::WRITERS]
        for seq in range(1, MAX_SAVES_PER_WRITER + 1):
            item = mine[seq % len(mine)]
            option = item["options"][seq % len(item["options"])]["id"]
            response = writer_client.put(
                f"/api/v1/attempts/{state['id']}/responses/{item['ref']}",
                json={"response": option, "client_seq": seq},
                headers=headers,
            )
            with lock:
                statuses.append(response.status_code)
                if response.status_code == 200 and response.json["accepted"]:
                    acks[item["ref"]].append((seq, option))
                if len(statuses) >= WRITERS * 5:
                    enough_saved.set()
            if response.status_code != 200:
                return

    threads = [threading.Thread(target=write, args=(n,)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    enough_saved.wait(timeout=60)
    result = client.post(f"/api/v1/attempts/{state['id']}/finish", headers=headers).json
    for thread in threads:
        thread.join(timeout=120)

    assert set(statuses) <= {200, 409}
    assert 409 in statuses, "some saves should have come after the finish"
    stored = {
        item["ref"]: item["response"]
        for item in items_of(client.get(f"/api/v1/attempts/{state['id']}", headers=headers).json)
    }
    for ref, accepted in acks.items():
        assert stored[ref] == max(accepted)[1], ref
    expected = sum(1 for ref, response in stored.items() if response == keys[ref])
    assert result["raw_points"] == expected


def starts_at_once(app, body: dict, headers: dict, times: int = 5) -> list[tuple[int, str]]:
    """POST the same start ``times`` times from as many threads released together; the
    (status, attempt id) of each."""
    results: list[tuple[int, str]] = []
    gate = threading.Barrier(times)

    def start() -> None:
        client = app.test_client()
        gate.wait(timeout=30)
        response = client.post("/api/v1/attempts", json=body, headers=headers)
        results.append((response.status_code, response.json.get("id")))

    threads = [threading.Thread(target=start) for _ in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_concurrent_starts_make_one_attempt(app, make_candidate, auth_headers, seeded):
    """Several simultaneous starts of one exam (double clicks) all get the same attempt."""
    headers = auth_headers(make_candidate())
    results = starts_at_once(app, {"exam_code": EXAM}, headers)
    assert len({attempt_id for _, attempt_id in results}) == 1
    assert sorted(status for status, _ in results) == [200, 200, 200, 200, 201]


def test_simultaneous_first_lookups_of_a_window_are_all_counted(app):
    """Lookups from one client released together, each the window's first as far as it
    knows: every one is counted, so exactly the one past the limit is refused."""
    lookups = 6
    app.config["VERIFY_RATE_LIMIT"] = lookups - 1
    gate = threading.Barrier(lookups)
    statuses: list[int] = []

    def look_up() -> None:
        client = app.test_client()
        gate.wait(timeout=30)
        response = client.get(
            "/api/v1/certificates/JP-00000-00000-00000",
            query_string={"date_of_birth": "1990-01-01"},
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=look_up) for _ in range(lookups)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(statuses) == [404] * (lookups - 1) + [429]
