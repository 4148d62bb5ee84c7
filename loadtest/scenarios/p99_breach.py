"""p99-breach: steady traffic while scripts/loadtest injects latency until AppHighLatencyP99 fires.

About 20 requests a second (the alert wants more than 1 r/s) of redirects and metadata reads;
the driver switches +800 ms on, waits for the alert to go pending and firing, switches it off and
waits for it to resolve, and reports each time.
"""

from locust import between, task

from _common import LinkPool, StackUser, follow

links = LinkPool()


class BreachClient(StackUser):
    wait_time = between(0.3, 0.7)

    def on_start(self) -> None:
        super().on_start()
        links.add(links.create(self, "pb-"))

    @task(4)
    def redirect(self) -> None:
        if code := links.pick():
            follow(self, code)

    @task(1)
    def read_metadata(self) -> None:
        if code := links.pick():
            self.send("GET", f"/api/links/{code}", "GET /api/links/{code}")
