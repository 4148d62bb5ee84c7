"""rate-limit: some clients burst far above the limit while others stay under it.

Burst clients send as fast as they can; nginx lets each through at RATE_LIMIT (10 r/s) after an
initial burst of RATE_LIMIT_BURST (20), and answers the rest 429, so each burst client should get
about 1 + burst + rate × seconds through. Polite clients send 2 r/s each and must never see a 429:
each simulated client is its own address to nginx. scripts/loadtest compares the figures.
"""

from locust import constant, constant_throughput, task

from _common import LinkPool, StackUser

links = LinkPool()
BURST_CLIENTS = 5


class RateLimitClient(StackUser):
    abstract = True
    label = ""

    def on_start(self) -> None:
        super().on_start()
        links.add(links.create(self, "rl-"))

    @task
    def redirect(self) -> None:
        code = links.pick()
        if code is None:
            return
        name = f"GET /{{code}} ({self.label})"
        with self.send("GET", f"/{code}", name, allow_redirects=False, catch_response=True) as response:
            if response.status_code != 307:
                response.failure(f"{response.status_code}")


class BurstClient(RateLimitClient):
    fixed_count = BURST_CLIENTS
    wait_time = constant(0)
    label = "burst"


class PoliteClient(RateLimitClient):
    wait_time = constant_throughput(2)
    label = "under the limit"
