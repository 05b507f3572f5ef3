"""A search-like service on 9200 (a tiny subset of Elasticsearch's API), documents in /data.

PUT /<index>/_doc/<id> stores a JSON document as /data/<index>/<id>.json;
GET /<index>/_doc/<id> reads it; GET /<index>/_search?q=word returns the documents whose
values contain the word; GET /_cluster/health answers {"status": "green"}.
"""

import json
import os
import re
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

DATA = Path(os.environ.get("SEARCH_DATA", "/data"))
_NAME = re.compile(r"^[a-z0-9_-]{1,64}$")


class Handler(BaseHTTPRequestHandler):
    """Routes of the search service."""

    def _send(self, status: int, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _parts(self) -> tuple[list[str], dict[str, str]]:
        path, _, query = self.path.partition("?")
        params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
        return [p for p in path.split("/") if p], params

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        parts, params = self._parts()
        if parts == ["_cluster", "health"]:
            return self._send(200, {"status": "green"})
        if len(parts) == 3 and parts[1] == "_doc" and all(_NAME.match(p) for p in (parts[0], parts[2])):
            file = DATA / parts[0] / f"{parts[2]}.json"
            if not file.is_file():
                return self._send(404, {"found": False})
            return self._send(200, {"found": True, "_source": json.loads(file.read_text())})
        if len(parts) == 2 and parts[1] == "_search" and _NAME.match(parts[0]):
            word = params.get("q", "").lower()
            hits = []
            for file in sorted((DATA / parts[0]).glob("*.json")):
                document = json.loads(file.read_text())
                if word in json.dumps(document).lower():
                    hits.append({"_id": file.stem, "_source": document})
            return self._send(200, {"hits": {"total": len(hits), "hits": hits}})
        return self._send(404, {"error": "not found"})

    def do_PUT(self) -> None:  # noqa: N802
        parts, _ = self._parts()
        if len(parts) != 3 or parts[1] != "_doc" or not all(_NAME.match(p) for p in (parts[0], parts[2])):
            return self._send(400, {"error": "use PUT /<index>/_doc/<id>"})
        document = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        (DATA / parts[0]).mkdir(parents=True, exist_ok=True)
        (DATA / parts[0] / f"{parts[2]}.json").write_text(json.dumps(document))
        return self._send(201, {"result": "created", "_id": parts[2]})

    def log_message(self, fmt: str, *args) -> None:
        print(f"search {fmt % args}", flush=True)


if __name__ == "__main__":
    ThreadingHTTPServer(("0.0.0.0", 9200), Handler).serve_forever()
