"""The embedded stack's Prometheus: every service's /metrics and Triton's, on the shipped alert
rules. Targets come from a file the stack rewrites as services start and stop, which Prometheus
re-reads by itself (file_sd), so replicas started later are scraped too."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import yaml

# The rules of compose.yaml and the chart (observability/ links to the chart's copy), found from
# the checkout like the stack's other shipped files: the embedded stack runs from a checkout.
RULES = Path(__file__).resolve().parents[2] / "observability" / "prometheus-rules.yaml"
JOB = "steadyeye"  # the chart's job label; SteadyeyeServiceUnready watches up{job=~"steadyeye.*"}
INTERVAL = "5s"  # a stack runs minutes, not months: alerts and graphs should move quickly


def config(targets_file: Path, rules: Path = RULES) -> dict[str, object]:
    return {
        "global": {"scrape_interval": INTERVAL, "evaluation_interval": INTERVAL},
        "rule_files": [str(rules)],
        "scrape_configs": [
            {
                "job_name": JOB,
                # Re-read on change (inotify), and every interval where a change goes unnoticed.
                "file_sd_configs": [{"files": [str(targets_file)], "refresh_interval": INTERVAL}],
            }
        ],
    }


def write_targets(path: Path, ports: Mapping[str, int]) -> None:
    """One target per process on 127.0.0.1, its instance label the stack's name for it (e.g.
    "ingest-1", "triton"): alerts name the process, not a port. Written whole, then renamed, so
    Prometheus never reads half a file."""
    groups = [
        {"targets": [f"127.0.0.1:{port}"], "labels": {"instance": name}}
        for name, port in sorted(ports.items())
    ]
    part = path.with_suffix(".part")
    part.write_text(json.dumps(groups, indent=1))
    os.replace(part, path)


def prepare(home: Path, ports: Mapping[str, int]) -> Path:
    """The config file and its targets in `home`; returns the config file."""
    home.mkdir(parents=True, exist_ok=True)
    write_targets(home / "targets.json", ports)
    config_file = home / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config(home / "targets.json"), sort_keys=False))
    return config_file


def argv(binary: str, home: Path, port: int) -> list[str]:
    return [
        binary,
        f"--config.file={home / 'prometheus.yml'}",
        f"--storage.tsdb.path={home / 'data'}",
        "--storage.tsdb.retention.time=1d",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
