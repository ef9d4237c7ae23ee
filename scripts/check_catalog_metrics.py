#!/usr/bin/env python3
"""Re-measures every shipped predictor on its manifest's test file with `r2dl eval` and says
whether each metric equals the manifest's to 4 decimals (a check that a change left outputs
unchanged).

    scripts/check_catalog_metrics.py target/release/r2dl [NAME ...]
"""
import json
import pathlib
import subprocess
import sys
import time


def main() -> int:
    binary, names = sys.argv[1], set(sys.argv[2:])
    failures = 0
    for manifest_path in sorted(pathlib.Path("udfs").glob("*/manifest.json")):
        manifest = json.loads(manifest_path.read_text())
        name, test = manifest["name"], manifest["training_data"].get("test_source")
        if (names and name not in names) or not test or "test" not in manifest["metrics"]:
            continue
        started = time.time()
        out = subprocess.run(
            [binary, "eval", "--predictor", str(manifest_path.parent), "--data", test, "--format", "json"],
            capture_output=True, text=True,
        )
        seconds = time.time() - started
        if out.returncode != 0:
            print(f"{name}: eval failed: {out.stderr.strip()}")
            failures += 1
            continue
        measured = json.loads(out.stdout)["metrics"]
        expected = manifest["metrics"]["test"]
        differ = {
            k: (round(v, 4), round(measured.get(k, float("nan")), 4))
            for k, v in expected.items()
            if k not in measured or round(v, 4) != round(measured[k], 4)
        }
        status = "same" if not differ else f"DIFFERENT {differ}"
        print(f"{name}: {len(expected)} metrics {status} (n {measured.get('n')}, {seconds:.0f} s)")
        failures += bool(differ)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
