"""Whole-process time per filed mail: m2r-deliver against Redmine's rdm-mailhandler.rb,
on the same mail shape and the same local Redmine, runs interleaved, median of N.

    .venv/bin/python bench/startup.py [N]
"""

from __future__ import annotations

import sys

from common import SCRIPT, machine_state, median_ms, request_mail, site_config, testbed, timed


def main(runs: int) -> None:
    info = testbed()
    config = site_config(info)
    ours = [str(SCRIPT), "--config", str(config)]
    theirs = ["ruby", info["rdm_mailhandler"], "--url", info["url"], "--key", info["mail_handler_key"],
              "--project", info["project"], "--tracker", "Support"]
    baselines = {"python3 -c pass": [sys.executable, "-c", "pass"], "ruby -e ''": ["ruby", "-e", ""]}
    samples: dict[str, list[float]] = {"m2r-deliver": [], "rdm-mailhandler.rb": [], **{k: [] for k in baselines}}
    timed(ours, request_mail(tag="warm-up"))  # first run fills the name cache, as any later mail finds it
    for _ in range(runs):
        for name, command in (("m2r-deliver", ours), ("rdm-mailhandler.rb", theirs)):
            ms, status = timed(command, request_mail(tag="bench-startup"))
            if status != 0:
                sys.exit(f"{name} exited {status}; is the test-bed up (testbed/redmine-testbed up)?")
            samples[name].append(ms)
        for name, command in baselines.items():
            samples[name].append(timed(command, b"")[0])
    print(f"runs: {runs} each, interleaved; machine: {machine_state()}")
    for name, values in samples.items():
        print(f"{name:20} median {median_ms(values):7.1f} ms   min {min(values):7.1f}   max {max(values):7.1f}")
    ratio = median_ms(samples["m2r-deliver"]) / median_ms(samples["rdm-mailhandler.rb"])
    print(f"ratio m2r-deliver / rdm-mailhandler.rb: {ratio:.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 15)
