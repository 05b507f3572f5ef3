"""The incremental HTTP framer: the same messages however the bytes are split into reads."""

from __future__ import annotations

import random

import pytest

from stacklet.linkproxy.httpframing import END, HEAD, Framer, ParseError, response_has_body

REQUESTS = (
    b"POST /post?x=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
    b"POST /chunked HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n4;e=1\r\ndefg\r\n0\r\nT: 1\r\n\r\n"
    b"\r\nGET /after-empty-line HTTP/1.1\r\nX-Request-Id: r-1\r\n\r\n"
    b"HEAD /h HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
    b"GET /close HTTP/1.1\r\nConnection: close\r\n\r\n"
)
EXPECTED_REQUESTS = [("POST", "/post"), ("POST", "/chunked"), ("GET", "/after-empty-line"), ("HEAD", "/h"), ("GET", "/close")]

RESPONSES = (
    b"HTTP/1.1 100 Continue\r\n\r\n"
    b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n"
    b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n"  # an answer to HEAD: no body
    b"HTTP/1.1 204 No Content\r\n\r\n"
    b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n"
    b"HTTP/1.0 200 OK\r\n\r\nuntil the connection closes"
)
RESPONSE_METHODS = ["GET", "GET", "HEAD", "GET", "GET", "GET"]


def _requests(pieces: list[bytes]) -> list[tuple]:
    framer = Framer(request=True)
    events = []
    for data in pieces:
        for _, event in framer.events(data):
            if event is HEAD:
                head = framer.head
                events.append((head.method, head.path, head.request_id, head.close))
                framer.expect_body(head.length, head.chunked)
            else:
                events.append(END)
    return events


def _responses(pieces: list[bytes]) -> list:
    framer = Framer(request=False)
    methods = iter(RESPONSE_METHODS)
    method = None
    events = []
    for data in pieces:
        for _, event in framer.events(data):
            if event is HEAD:
                status = framer.head.status
                events.append(status)
                if status < 200:
                    framer.expect_body(0, False)
                    continue
                method = next(methods)
                if response_has_body(method, status):
                    framer.expect_body(framer.head.length, framer.head.chunked, framer.head.length is None)
                else:
                    framer.expect_body(0, False)
            else:
                events.append(END)
    return events


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in zip(points, points[1:])]


def test_requests_in_one_read():
    events = _requests([REQUESTS])
    heads = [e for e in events if e is not END]
    assert [(m, p) for m, p, _, _ in heads] == EXPECTED_REQUESTS
    assert heads[2][2] == "r-1" and heads[3][3] is False and heads[4][3] is True
    assert events.count(END) == 5


def _splits(data: bytes) -> list[list[int]]:
    """Every single cut, every pair of neighbouring cuts, and 300 seeded random sets of cuts."""
    rng = random.Random(13)
    return ([[cut] for cut in range(len(data))] + [[cut, cut + 1] for cut in range(len(data))]
            + [rng.sample(range(len(data)), rng.randint(2, 40)) for _ in range(300)])


def test_requests_split_anywhere_give_the_same_events():
    whole = _requests([REQUESTS])
    for cuts in _splits(REQUESTS):
        assert _requests(_split(REQUESTS, cuts)) == whole, cuts


def test_responses_split_anywhere_give_the_same_events():
    expected = [100, END, 200, END, 200, END, 200, END, 204, END, 304, END, 200]
    for cuts in _splits(RESPONSES):
        assert _responses(_split(RESPONSES, cuts)) == expected, cuts


@pytest.mark.parametrize("garbage", [
    b"\x16\x03\x01 TLS hello\r\n\r\n", b"GET /\r\n\r\n", b"HTTP/1.1 200 OK\r\n\r\n",
    b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", b"POST / HTTP/1.1\r\nContent-Length: 1e3\r\n\r\n",
    b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
    b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n", b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 20_000,
])
def test_what_is_not_http_raises_parse_error(garbage):
    with pytest.raises(ParseError):
        _requests([garbage])
