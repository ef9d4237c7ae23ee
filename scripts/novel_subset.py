#!/usr/bin/env python3
"""The shipped predictors and the composition random forest on the whole test split and on its
novel rows (sharing under 30 % of their distinct 5-mers with every training row), one CSV row per
task and model.

    scripts/novel_subset.py target/release/r2dl [TASK ...] > docs/novel_subset.csv

Needs scikit-learn (the peer, scripts/peer_composition_rf.py --novel) and ../shared/data (or
R2DL_SHARED_DATA).
"""
import json
import os
import re
import subprocess
import sys

TASKS = ["amp", "toxicity", "antibody_affinity", "solubility", "solubility_esol"]


def main() -> None:
    binary, tasks = sys.argv[1], sys.argv[2:] or TASKS
    data = os.environ.get("R2DL_SHARED_DATA", "../shared/data")
    print("task,model,novel_rows,test_rows,metric,all,novel")
    for task in tasks:
        doc = json.loads(subprocess.run(
            [binary, "eval", "--predictor", f"udfs/{task}", "--data", f"{data}/{task}/test.csv", "--format", "json"],
            check=True, capture_output=True, text=True).stdout)
        metric = "spearman" if doc["kind"] == "regression" else "auroc"
        novel = doc["novel"]
        novel_score = (novel["metrics"] or {}).get(metric, float("nan"))
        print(f"{task},r2dl,{novel['rows']},{int(doc['metrics']['n'])},{metric},"
              f"{doc['metrics'][metric]:.4f},{novel_score:.4f}", flush=True)
        for name, options in (("composition_rf", []), ("dipeptide_rf", ["--dipeptides"])):
            peer = subprocess.run(
                [sys.executable, "scripts/peer_composition_rf.py", "--novel", *options, task, data],
                check=True, capture_output=True, text=True).stdout
            rows, total = re.search(r"(\d+) of (\d+) test rows are novel", peer).groups()
            if metric == "spearman":
                whole = re.search(r"random forest: spearman (\S+)", peer)
                part = re.search(r"novel random forest: spearman (\S+)", peer)
            else:
                whole = re.search(rf"{task}: accuracy \S+ auroc (\S+)", peer)
                part = re.search(r"novel: accuracy \S+ auroc (\S+)", peer)
            part = float(part[1]) if part else float("nan")
            print(f"{task},{name},{rows},{total},{metric},{float(whole[1]):.4f},{part:.4f}", flush=True)


if __name__ == "__main__":
    main()
