"""agt.audit.backends, the JSONL backend: a writer keeps its file open and the offset it wrote to, and still
sees every line another writer (another process, with its own backend) appended or rotated into."""

from __future__ import annotations

from pathlib import Path

import pytest

from agt.audit.backends import JsonlBackend


@pytest.fixture
def pair(tmp_path):
    a, b = JsonlBackend(tmp_path / "log"), JsonlBackend(tmp_path / "log", max_bytes=64)
    yield a, b
    a.close()
    b.close()


def append(backend: JsonlBackend, position: object, text: str) -> tuple[list[str], object]:
    """What a writer does for one record, under the lock: read what others wrote, then append."""
    with backend.locked():
        lines, position = backend.read_since(position)
        return [line.text for line in lines], backend.append(text)


def test_append_returns_the_file_and_the_offset_after_its_line(tmp_path):
    backend = JsonlBackend(tmp_path / "log")
    try:
        _, pos = append(backend, None, '{"n":1}')
        _, pos = append(backend, pos, '{"n":2}')
        assert pos == (1, (tmp_path / "log" / "audit-000001.jsonl").stat().st_size)
    finally:
        backend.close()


def test_a_writers_own_lines_are_not_read_back(tmp_path):
    backend = JsonlBackend(tmp_path / "log")
    try:
        _, pos = append(backend, None, '{"n":1}')
        seen, pos = append(backend, pos, '{"n":2}')
        assert seen == []
    finally:
        backend.close()


def test_a_line_another_writer_appended_is_read_before_the_next_append(pair):
    a, b = pair
    _, pos_a = append(a, None, '{"n":1}')
    _, _ = append(b, None, '{"n":2}')
    seen, _ = append(a, pos_a, '{"n":3}')
    assert seen == ['{"n":2}']


def test_a_rotation_by_a_writer_with_a_smaller_max_bytes_is_seen(pair, tmp_path):
    """b rotates at 64 bytes, a at 64 MiB: a's own file did not grow, yet b's line in the next file is read."""
    a, b = pair
    _, pos_a = append(a, None, '{"pad":"' + "x" * 80 + '"}')
    _, pos_b = append(b, None, '{"n":2}')
    assert pos_b[0] == 2  # b started audit-000002.jsonl
    seen, pos_a = append(a, pos_a, '{"n":3}')
    assert (seen, pos_a[0]) == (['{"n":2}'], 2)


def test_lines_land_whole_and_in_order_across_writers(pair, tmp_path):
    a, b = pair
    pos = {id(a): None, id(b): None}
    for i in range(20):
        w = a if i % 3 else b
        _, pos[id(w)] = append(w, pos[id(w)], f'{{"n":{i}}}')
    reader = JsonlBackend(tmp_path / "log")
    try:
        lines, _ = reader.read_since(None)
    finally:
        reader.close()
    assert [line.text for line in lines] == [f'{{"n":{i}}}' for i in range(20)]


def test_appends_in_one_hold_of_the_lock_follow_each_other(tmp_path):
    backend = JsonlBackend(tmp_path / "log")
    try:
        with backend.locked():
            backend.read_since(None)
            positions = [backend.append(f'{{"n":{i}}}') for i in range(3)]
        lines, _ = backend.read_since(None)
    finally:
        backend.close()
    assert ([p[1] for p in positions], [line.text for line in lines]) == ([8, 16, 24], ['{"n":0}', '{"n":1}', '{"n":2}'])


def test_a_hold_of_the_lock_that_filled_the_file_rotates_on_its_next_append(tmp_path):
    backend = JsonlBackend(tmp_path / "log", max_bytes=16)
    try:
        with backend.locked():
            backend.read_since(None)
            positions = [backend.append(f'{{"n":{i}}}') for i in range(3)]
    finally:
        backend.close()
    assert [p[0] for p in positions] == [1, 1, 2]


@pytest.mark.parametrize("max_bytes", [16, 40, 1000])
def test_append_many_fills_and_rotates_files_as_appending_one_by_one_does(tmp_path, max_bytes):
    texts = [f'{{"n":{i}}}' if i % 3 else f'{{"long":"{"x" * i}"}}' for i in range(20)]
    one, many = JsonlBackend(tmp_path / "one", max_bytes=max_bytes), JsonlBackend(tmp_path / "many", max_bytes=max_bytes)
    try:
        with one.locked():
            one.read_since(None)
            last_one = [one.append(t) for t in texts][-1]
        with many.locked():
            many.read_since(None)
            last_many = many.append_many(texts[:7])
        with many.locked():
            many.read_since(last_many)
            last_many = many.append_many(texts[7:])
    finally:
        one.close()
        many.close()
    files = lambda d: {p.name: p.read_bytes() for p in sorted(d.glob("audit-*.jsonl"))}
    assert last_many == last_one
    assert files(tmp_path / "many") == files(tmp_path / "one")


def test_a_short_write_of_many_lines_takes_them_all_back_out(tmp_path, monkeypatch):
    import os

    from agt.audit.backends import AuditStorageError

    backend = JsonlBackend(tmp_path / "log")
    try:
        with backend.locked():
            backend.read_since(None)
            backend.append('{"n":0}')
            real_write = os.write
            monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, data[: len(data) // 2]))
            with pytest.raises(AuditStorageError, match="short write"):
                backend.append_many(['{"n":1}', '{"n":2}', '{"n":3}'])
            monkeypatch.undo()
        lines, _ = backend.read_since(None)
    finally:
        backend.close()
    assert [line.text for line in lines] == ['{"n":0}']
