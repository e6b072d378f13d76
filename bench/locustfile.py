"""The load test's users (issue 10, item 3), driven by bench/load.py: caregivers working through today's roster,
managers listing and matching, auditors pulling reports, all through the HTTP API with bearer tokens.

Every task is one request, and each user class has a fixed number of users and a fixed mean rate per user, so the
mix and the total rate are what bench/load.py asks for. Each user waits an exponentially distributed time between
requests, so that the requests of many independent phones arrive as a Poisson process. (locust's
constant_throughput makes users catch up together after any pause, in bursts of hundreds of requests at once that
no district's phones would send: it measured the load generator's bursts, not the server.) The plan file
(LOAD_PLAN) names the tokens, the workers and the scope; nothing here imports the app.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import time
import uuid
from pathlib import Path

from locust import FastHttpUser, task

PLAN = json.loads(Path(os.environ["LOAD_PLAN"]).read_text(encoding="utf-8"))
RATES = PLAN["rates"]  # requests per second per user, by class
_caregivers = itertools.cycle(PLAN["caregivers"])


def poisson(rate: float):
    """A locust wait time: exponentially distributed with mean 1/rate seconds (Poisson arrivals)."""

    def wait(_user) -> float:
        return random.expovariate(rate)

    return wait


class Caregiver(FastHttpUser):
    """A caregiver on a phone: the roster, check in at the next visit, the roster refreshed PLAN["refreshes"] times
    while there, check out, the roster again, and so on. Once the day's visits are done, the roster only."""

    fixed_count = PLAN["users"]["caregiver"]
    wait_time = poisson(RATES["caregiver"])

    def on_start(self) -> None:
        self.me = next(_caregivers)
        self.headers = {"Authorization": f"Bearer {self.me['token']}"}
        self.visit, self.refreshes = None, 0

    @task
    def step(self) -> None:
        if self.visit is None or self.refreshes < PLAN["refreshes"]:
            self.refreshes += 1
            self._roster()
        elif self.visit["status"] == "published":
            self._write("check-in", {"lat": self.visit["lat"], "lon": self.visit["lon"]})
        else:
            self._write("check-out", {"lat": self.visit["lat"], "lon": self.visit["lon"], "tasks": [],
                                      "confirmation_method": "none", "satisfaction": random.randint(3, 5)})

    def _roster(self) -> None:
        with self.client.get(f"/api/v1/rosters?date={PLAN['today']}", headers=self.headers, name="roster",
                             catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {response.text[:200]}")
                return
            stops = response.json()["visits"]
        self.visit = next((v for v in stops if v["status"] in ("published", "in_progress")), None)

    def _write(self, what: str, body: dict) -> None:
        headers = {**self.headers, "Idempotency-Key": uuid.uuid4().hex}
        with self.client.post(f"/api/v1/visits/{self.visit['visit_id']}/{what}", json=body, headers=headers,
                              name=what, catch_response=True) as response:
            if response.status_code != 201:
                response.failure(f"HTTP {response.status_code}: {response.text[:200]}")
        self.refreshes = 0


class Manager(FastHttpUser):
    """A district or town manager: the lists of the working day, and a matching run over their scope every
    MATCHING_EVERY_S seconds (a second manager's run meanwhile is answered 409 matching_running, by design)."""

    fixed_count = PLAN["users"]["manager"]
    wait_time = poisson(RATES["manager"])
    LISTS = (("referrals", 4), ("unmet-needs", 3), ("recipients", 4), ("visits", 3), ("alerts", 2))

    def on_start(self) -> None:
        self.me = PLAN["managers"][random.randrange(len(PLAN["managers"]))]
        self.headers = {"Authorization": f"Bearer {self.me['token']}"}
        self.next_matching = time.monotonic() + random.uniform(0, PLAN["matching_every_s"])

    @task
    def work(self) -> None:
        if time.monotonic() >= self.next_matching:
            self.next_matching += PLAN["matching_every_s"]
            self._matching()
            return
        name = random.choices([n for n, _ in self.LISTS], [w for _, w in self.LISTS])[0]
        organisation = random.choice(PLAN["organisations"])
        path = {"referrals": f"/api/v1/referrals?status=active&page={random.randint(1, 20)}&page_size=50",
                "unmet-needs": "/api/v1/matching/unmet-needs?page_size=50",
                "recipients": f"/api/v1/recipients?page={random.randint(1, 40)}&page_size=50",
                "visits": f"/api/v1/visits?organisation_id={organisation}&date={PLAN['today']}&page_size=100",
                "alerts": "/api/v1/alerts?page_size=50"}[name]
        get(self, path, name)

    def _matching(self) -> None:
        body = {"town": self.me["town"]} if self.me.get("town") else {}
        with self.client.post("/api/v1/matching/runs", json=body, headers=self.headers, name="matching-run",
                              catch_response=True) as response:
            if response.status_code == 409 and response.json().get("code") == "matching_running":
                response.success()  # the designed answer while another manager's run is on
                self.environment.events.request.fire(request_type="POST", name="matching-run: 409 busy",
                                                     response_time=0, response_length=0, exception=None,
                                                     context={})
            elif response.status_code != 201:
                response.failure(f"HTTP {response.status_code}: {response.text[:200]}")


class Auditor(FastHttpUser):
    """An auditor: an organisation's month by service type, the records behind one of its groups, today's ledger."""

    fixed_count = PLAN["users"]["auditor"]
    wait_time = poisson(RATES["auditor"])

    def on_start(self) -> None:
        self.headers = {"Authorization": f"Bearer {PLAN['auditor']}"}
        self.first, self.last = PLAN["month"]

    @task(2)
    def organisation_month(self) -> None:
        organisation = random.choice(PLAN["organisations"])
        get(self, f"/api/v1/reports/kpis?from={self.first}&to={self.last}&group_by=service_type"
                  f"&organisation_id={organisation}", "report")

    @task(2)
    def records_behind(self) -> None:
        organisation = random.choice(PLAN["organisations"])
        service_type = random.choice(PLAN["service_types"])
        get(self, f"/api/v1/reports/records?from={self.first}&to={self.last}&organisation_id={organisation}"
                  f"&service_type={service_type}", "report-records")

    @task(1)
    def ledger(self) -> None:
        get(self, f"/api/v1/service-records?date_from={PLAN['today']}&page_size=50", "service-records")


def get(user, path: str, name: str) -> None:
    """A GET that must answer 200."""
    with user.client.get(path, headers=user.headers, name=name, catch_response=True) as response:
        if response.status_code != 200:
            response.failure(f"HTTP {response.status_code}: {response.text[:200]}")
