"""Real Prometheus on the shipped files: the SLO alerts pass promtool's checks and their unit tests,
every alert has a case where it fires and one where it stays quiet, the scrape configs of
compose.yaml and of the embedded stack are valid, and the stack's own Prometheus scrapes every
process of the stack (those started later too) and evaluates the alerts. Without promtool or
prometheus the tests are skipped, except on CI, whose set-up installs them."""

from __future__ import annotations

import json
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from steadyeye.embedded import prometheus as prom
from steadyeye.embedded.stack import Stack
from tests.conftest import installed, wait_for
from tests.test_compose import COMPOSE, interpolated, steadyeye_services

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "observability" / "prometheus-rules.yaml"
CHART_RULES = ROOT / "helm" / "steadyeye" / "files" / "prometheus-rules.yaml"
RULE_TESTS = ROOT / "observability" / "prometheus-rules.test.yaml"
COMPOSE_CONFIG = ROOT / "observability" / "prometheus.yml"


def tool(name: str) -> str:
    return installed(name, "prometheus")


def promtool(*args: str | Path) -> None:
    done = subprocess.run([tool("promtool"), *map(str, args)], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, check=False)  # fmt: skip
    assert done.returncode == 0, f"promtool {' '.join(map(str, args))}:\n{done.stdout}{done.stderr}"


def alert_rules() -> dict[str, dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {r["alert"]: r for g in groups for r in g["rules"] if "alert" in r}


def cases() -> dict[str, list[list[dict[str, Any]]]]:
    """The expected alerts of each alert_rule_test, by alert name ([] = stays quiet)."""
    out: dict[str, list[list[dict[str, Any]]]] = {}
    for group in yaml.safe_load(RULE_TESTS.read_text())["tests"]:
        for case in group.get("alert_rule_test") or []:
            out.setdefault(case["alertname"], []).append(case.get("exp_alerts") or [])
    return out


ALERTS = alert_rules()


# --- The rules and their unit tests -----------------------------------------------------------


@pytest.mark.parametrize("rules", [RULES, CHART_RULES], ids=["observability", "chart"])
def test_the_rules_pass_promtools_check(rules: Path) -> None:
    promtool("check", "rules", rules)


def test_the_alerts_pass_their_unit_tests() -> None:
    rule_files = yaml.safe_load(RULE_TESTS.read_text())["rule_files"]
    assert [(RULE_TESTS.parent / f).resolve() for f in rule_files] == [RULES.resolve()]
    promtool("test", "rules", RULE_TESTS)


@pytest.mark.parametrize("alert", sorted(ALERTS))
def test_every_alert_has_a_firing_and_a_quiet_case(alert: str) -> None:
    """Quiet: below its threshold or not yet past its `for:`. Firing: the alert's labels, its
    severity among them, and every one of its annotations as rendered."""
    rule, expected = ALERTS[alert], cases().get(alert, [])
    assert [] in expected, f"{alert}: no case where it stays quiet"
    firing = [alerts for alerts in expected if alerts]
    assert firing, f"{alert}: no case where it fires"
    for alerts in firing:
        for one in alerts:
            assert one["exp_labels"]["severity"] == rule["labels"]["severity"], alert
            assert set(one.get("exp_annotations", {})) == set(rule["annotations"]), alert


def test_the_unit_tests_test_only_alerts_that_exist() -> None:
    assert set(cases()) <= set(ALERTS)


# --- Scrape configs ---------------------------------------------------------------------------


def test_composes_scrape_config_is_valid_and_scrapes_every_service_and_triton() -> None:
    promtool("check", "config", COMPOSE_CONFIG)
    config = yaml.safe_load(COMPOSE_CONFIG.read_text())
    [job] = config["scrape_configs"]
    assert job["job_name"] == "steadyeye"  # the chart's, which SteadyeyeServiceUnready watches
    static = {t for c in job["static_configs"] for t in c["targets"]}
    found = {f"{n}:{c['port']}" for c in job["dns_sd_configs"] for n in c["names"]}
    compose = yaml.safe_load(COMPOSE.read_text())
    services = steadyeye_services(compose)
    optional = {n for n, spec in services.items() if spec.get("profiles")}
    # Services run only with a profile are found by DNS: not run, they are no target that is down.
    assert static == {f"{n}:8080" for n in set(services) - optional} | {"triton:8002"}
    assert found == {f"{n}:8080" for n in optional}


def test_composes_prometheus_reads_the_config_and_the_rules_beside_it() -> None:
    spec = yaml.safe_load(COMPOSE.read_text())["services"]["prometheus"]
    assert spec["image"].startswith("prom/prometheus:v2.")
    assert spec["ports"] == ["127.0.0.1:9090:9090"]
    mounts = {}
    for volume in spec["volumes"]:
        source, target, mode = interpolated(volume).split(":")
        mounts[target] = (ROOT / source).resolve(), mode
    assert mounts["/etc/prometheus/prometheus.yml"] == (COMPOSE_CONFIG, "ro")
    # Rule files are relative to the config file, in the container as here.
    for name in yaml.safe_load(COMPOSE_CONFIG.read_text())["rule_files"]:
        assert mounts[f"/etc/prometheus/{name}"] == (RULES.resolve(), "ro")


def test_the_embedded_stacks_scrape_config_is_valid(tmp_path: Path) -> None:
    config = prom.prepare(tmp_path, {"inference": 8080, "ingest-1": 8081, "triton": 8002})
    promtool("check", "config", config)
    targets = json.loads((tmp_path / "targets.json").read_text())
    assert {t["labels"]["instance"]: t["targets"] for t in targets} == {
        "inference": ["127.0.0.1:8080"], "ingest-1": ["127.0.0.1:8081"],
        "triton": ["127.0.0.1:8002"],
    }  # fmt: skip


# --- The embedded stack's Prometheus ----------------------------------------------------------


def test_without_prometheus_the_stack_says_how_to_get_it_and_runs_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no prometheus on it
    said: list[str] = []
    stack = Stack(workdir=tmp_path, say=said.append, prometheus=True)
    stack._start_prometheus()
    assert said == [
        "prometheus not installed (apt-get install prometheus); "
        "metrics are still on each service's /metrics"
    ]
    assert stack.prometheus_port is None and not stack.processes


@pytest.fixture(scope="module")
def prometheus(stack: Stack) -> Iterator[int]:
    """The session stack's Prometheus, started as Stack(prometheus=True) starts it once the
    services are up (a stack of its own would cost another start-up), and stopped after this
    module: the rest of the session runs as before."""
    tool("prometheus")
    stack._start_prometheus()
    assert stack.prometheus_port is not None, (stack.logs / "prometheus.log").read_text()[-3000:]
    try:
        yield stack.prometheus_port
    finally:
        stack.processes.pop("prometheus").stop()
        stack.prometheus_port = None


def api(port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/{path}", timeout=5) as response:
        return json.load(response)["data"]


def targets(port: int) -> dict[str, dict[str, Any]]:
    active = api(port, "targets?state=active")["activeTargets"]
    return {t["labels"]["instance"]: t for t in active}


@pytest.mark.stack
def test_the_stacks_prometheus_scrapes_every_service_and_triton(
    stack: Stack, prometheus: int
) -> None:
    urls = {name: f"http://127.0.0.1:{port}/metrics" for name, port in stack.service_ports.items()}
    if "triton" in stack.processes:  # the stack's own Triton
        urls["triton"] = f"http://127.0.0.1:{stack.triton_ports['metrics']}/metrics"

    def health() -> dict[str, str]:
        return {name: t["health"] for name, t in targets(prometheus).items()}

    wait_for(lambda: health() == dict.fromkeys(urls, "up"), 60, 0.5)
    found = targets(prometheus)
    assert {name: t["scrapeUrl"] for name, t in found.items()} == urls
    assert {name: (t["health"], t["lastError"]) for name, t in found.items()} == dict.fromkeys(
        urls, ("up", "")
    )
    assert {t["labels"]["job"] for t in found.values()} == {"steadyeye"}


@pytest.mark.stack
def test_a_service_started_later_is_scraped_and_one_stopped_is_dropped(
    stack: Stack, prometheus: int
) -> None:
    name = f"ingest-scraped-{uuid.uuid4().hex[:6]}"  # runs the cameras topic's cameras
    stack.start_service("ingest", instance=name, env={"STEADYEYE_INGEST_CAMERAS_FILE": ""})
    try:
        stack.wait_ready(name)
        assert wait_for(lambda: targets(prometheus).get(name, {}).get("health") == "up", 30, 0.5)
    finally:
        stack.stop_service(name)
    assert wait_for(lambda: name not in targets(prometheus), 30, 0.5)


@pytest.mark.stack
def test_the_stacks_prometheus_evaluates_the_shipped_alerts(prometheus: int) -> None:
    def rules() -> dict[str, dict[str, Any]]:
        groups = api(prometheus, "rules?type=alert")["groups"]
        return {r["name"]: r for g in groups for r in g["rules"]}

    # Health is "unknown" until the first evaluation (every 5 s), "err" when PromQL fails.
    wait_for(lambda: {r["health"] for r in rules().values()} == {"ok"}, 30, 0.5)
    found = rules()
    assert set(found) == set(ALERTS)
    assert {n: (r["health"], r.get("lastError", "")) for n, r in found.items()} == dict.fromkeys(
        ALERTS, ("ok", "")
    )
