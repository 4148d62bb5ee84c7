"""steady: a realistic mix from many clients, each with its own address.

Per user, about one request a second: mostly redirects, some metadata reads and listings, a
few creates and deletes (of links the user made itself) and top-links queries. The CI gate:
error ratio <= 0.1 % and p99 <= 500 ms (loadtest/README.md).
"""

from locust import between, task

from _common import LinkPool, StackUser, follow

links = LinkPool()  # links every user may follow; never deleted during the run


class SteadyClient(StackUser):
    wait_time = between(0.5, 1.5)

    def on_start(self) -> None:
        super().on_start()
        links.add(links.create(self, "st-"))
        self.mine: list[tuple[str, str]] = []  # code, management token

    @task(70)
    def redirect(self) -> None:
        if code := links.pick():
            follow(self, code)

    @task(10)
    def read_metadata(self) -> None:
        if code := links.pick():
            self.send("GET", f"/api/links/{code}", "GET /api/links/{code}")

    @task(5)
    def list_links(self) -> None:
        self.send("GET", "/api/links?limit=20", "GET /api/links")

    @task(5)
    def top_links(self) -> None:
        self.send("GET", "/api/stats/top?window=1h", "GET /api/stats/top")

    @task(6)
    def create(self) -> None:
        if created := links.create_owned(self, "sm-"):
            self.mine.append(created)

    @task(4)
    def delete(self) -> None:
        if self.mine:
            code, token = self.mine.pop()
            headers = {"Authorization": f"Bearer {token}"}
            self.send("DELETE", f"/api/links/{code}", "DELETE /api/links/{code}", headers=headers)
