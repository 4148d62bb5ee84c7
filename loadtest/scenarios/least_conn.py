"""least-conn: uneven request durations, with one replica made slow.

Fast redirects with, one request in twenty, a heavy query (top links over 30 days); scripts/loadtest
makes one replica hang (+5 s per request, the fault switch) and runs this twice: with nginx's
least_conn and with round robin. Each answer is counted under the replica that served it
("… via <replica>", from X-Replica), so Locust's table shows each replica's share and latency.
"""

from locust import between, task

from _common import LinkPool, StackUser

links = LinkPool()


class UnevenClient(StackUser):
    wait_time = between(0.05, 0.15)

    def on_start(self) -> None:
        super().on_start()
        links.add(links.create(self, "lc-"))

    def per_replica(self, path: str, name: str, expected: int) -> None:
        with self.send("GET", path, name, allow_redirects=False, catch_response=True) as response:
            replica = response.headers.get("X-Replica") or "unknown"
            response.request_meta["name"] = f"{name} via {replica}"
            if response.status_code != expected:
                response.failure(f"{name}: {response.status_code}")

    @task(19)
    def redirect(self) -> None:
        if code := links.pick():
            self.per_replica(f"/{code}", "GET /{code}", 307)

    @task(1)
    def heavy_query(self) -> None:
        self.per_replica("/api/stats/top?window=30d&limit=100", "GET /api/stats/top", 200)
